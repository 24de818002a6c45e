"""Issue 19: hostile inputs on a box that runs for months, each a real file or situation through the real CLI or API.

Every child process runs under an address-space cap (``RLIMIT_AS`` = :data:`AS_LIMIT_MB`) and a timeout, so a
regression fails instead of exhausting memory or hanging; each case asserts a non-zero exit (or a skipped row where a
folder or list goes on), exactly one ``Error:`` line, no traceback, no signal, the peak RSS under its bound (the
child's ``ru_maxrss`` from ``wait4``: :data:`BOMB_RSS_MB` for file bombs) and every input byte-identical afterwards.

Runtime: the bad images are classified by one list run and one folder run (a case each), the card cases run in
process, the bombs in one child each (``test_the_tables_count`` counts them all).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shlex
import shutil
import socket
import stat
import sys
from pathlib import Path

import pytest

from .hostile_files import (
    AS_LIMIT_MB,
    BAD_IMAGES,
    BOMB_RSS_MB,
    ZIP_BOMBS,
    assert_clean_failure,
    assert_clean_success,
    edgecnn,
    fanout_metadata,
    good_png,
    nonfinite_onnx,
    onnx_with_props,
    png_bomb,
    python,
    with_metadata,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="FIFOs, devices and RLIMIT_AS: Linux")


def _hashes(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        files = [root] if not root.is_dir() else sorted(root.rglob("*"))
        for f in files:
            try:
                st = os.lstat(f)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out[os.fsdecode(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


# ---------------------------------------------------------------------- hostile names (valid images)
#: File names that try to forge rows, lines or formulas: each is a good image, classified, with its name intact.
HOSTILE_NAMES: list[tuple[str, bytes]] = [
    ("cr-in-name", b"a\rb.png"),
    ("lf-in-name", b"line1\nline2.png"),
    ("crlf-forged-row", b"x.png,0,alpha,1.0\r\nforged.png"),
    ("formula-equals", b"=HYPERLINK(\"http:__evil\",\"x\").png"),
    ("formula-plus", b"+1+cmd.png"),
    ("formula-minus", b"-2+3.png"),
    ("formula-at", b"@SUM(1).png"),
    ("formula-tab", b"\tleading-tab.png"),
    ("non-utf8-bytes", b"caf\xe9-\xff\xfe.png"),
    ("ansi-clear-screen", b"\x1b[2J\x1b[H.png"),
    ("osc8-hyperlink", b"\x1b]8;;http:__x\x1b\\link.png"),
    ("bidi-override", "\u202eevil\u202c.png".encode()),
    ("rich-markup-open", b"[bold red]x.png"),
    ("rich-markup-link", b"[link=http:__x]y[_link].png"),
    ("quote-and-comma", b"a\",\"b.png"),
]

#: Paths that are not regular files, listed by name: each a skipped row, never a hang or an out-of-memory.
SPECIAL = ["fifo-cam.png", "dev-zero", "dev-null", "folder.png", "socket.png", "missing.png", "symlink-to-dev-zero.png"]


@pytest.fixture(scope="module")
def hostile_tree(tmp_path_factory):
    """A folder of every bad image, hostile name and special file, and a LIST.txt naming them all (plus good ones)."""
    root = tmp_path_factory.mktemp("hostile")
    data = root / "data"
    data.mkdir()
    entries: dict[str, Path] = {}
    for name, build, _ in BAD_IMAGES:
        p = data / name
        p.write_bytes(build())  # type: ignore[operator]
        entries[name] = p
    for i, (cid, raw) in enumerate(HOSTILE_NAMES):
        p = Path(os.fsdecode(bytes(data) + b"/" + raw))
        p.write_bytes(good_png(i))
        entries[cid] = p
    for i in range(2):
        (data / f"good{i}.png").write_bytes(good_png(i))
    special = root / "special"
    special.mkdir()
    os.mkfifo(special / "fifo-cam.png")
    (special / "folder.png").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(special / "socket.png"))
    (special / "symlink-to-dev-zero.png").symlink_to("/dev/zero")
    paths = {"fifo-cam.png": special / "fifo-cam.png", "dev-zero": Path("/dev/zero"), "dev-null": Path("/dev/null"),
             "folder.png": special / "folder.png", "socket.png": special / "socket.png",
             "missing.png": special / "missing.png", "symlink-to-dev-zero.png": special / "symlink-to-dev-zero.png"}
    entries.update(paths)
    lst = root / "list.txt"
    lines = [os.fsencode(p) for p in entries.values() if b"\n" not in os.fsencode(p) and b"\r" not in os.fsencode(p)]
    lst.write_bytes(b"\n".join(lines + [os.fsencode(data / "good0.png")]) + b"\n")
    yield root, data, lst, entries
    sock.close()


@pytest.fixture(scope="module")
def list_run(hostile_tree, exported_artifacts):
    """One ``edgecnn run`` over LIST.txt (CSV + JSONL) under the memory cap; inputs hashed before and after."""
    root, data, lst, entries = hostile_tree
    model = exported_artifacts["tflite-float32"]
    before = _hashes(data, lst, model)
    out = root / "out-list"
    res = edgecnn("run", model, "-s", lst, "--save-csv", out / "r.csv", "--save-jsonl", out / "r.jsonl", "--workers",
                  "2")
    return res, out, before, _hashes(data, lst, model)


@pytest.fixture(scope="module")
def folder_run(hostile_tree, exported_artifacts):
    """One ``edgecnn run`` over the folder itself (OpenCV decoding on worker threads)."""
    root, data, lst, entries = hostile_tree
    model = exported_artifacts["tflite-float32"]
    before = _hashes(data, model)
    out = root / "out-folder"
    res = edgecnn("run", model, "-s", data, "--save-csv", out / "r.csv", "--save-jsonl", out / "r.jsonl",
                  "--workers", "3")
    return res, out, before, _hashes(data, model)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        return list(csv.DictReader(fh))


def _jsonl_rows(path: Path) -> list[dict]:
    rows = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        rows.append(json.loads(line.decode("utf-8")))  # every line valid UTF-8 JSON (strict)
    return rows


def _the_run_held(res, before, after) -> None:
    assert_clean_success(res, rss_mb=BOMB_RSS_MB)
    assert before == after, "an input changed"


@pytest.mark.parametrize("case", BAD_IMAGES, ids=[c[0] for c in BAD_IMAGES])
@pytest.mark.parametrize("how", ["list", "folder"])
def test_bad_image_is_a_row_not_a_crash(case, how, list_run, folder_run, hostile_tree):
    """A bad image in a list or folder is one skipped row (one line in its error column); the run goes on, within
    the memory bound, and changes no input."""
    name, _, word = case
    res, out, before, after = list_run if how == "list" else folder_run
    _the_run_held(res, before, after)
    rows = [r for r in _csv_rows(out / "r.csv") if os.path.basename(r["source"]) == name]
    assert len(rows) == 1, f"{name}: {len(rows)} rows"
    row = rows[0]
    if word:
        assert row["status"] == "skipped" and word in row["error"], row
        assert "\n" not in row["error"] and len(row["error"]) < 400, row["error"]
    else:
        assert row["status"] in ("ok", "skipped"), row


@pytest.mark.parametrize("name", SPECIAL)
def test_special_file_in_a_list_is_a_skipped_row(name, list_run, hostile_tree):
    """A FIFO, /dev/zero, /dev/null, a folder, a socket, a missing file and a symlink to a device, named in a list:
    each a skipped row saying what it is; the run neither hangs nor runs out of memory."""
    res, out, before, after = list_run
    _the_run_held(res, before, after)
    entries = hostile_tree[3]
    rows = [r for r in _csv_rows(out / "r.csv") if r["source"] == os.fsdecode(entries[name])]
    assert len(rows) == 1 and rows[0]["status"] == "skipped", rows
    assert any(w in rows[0]["error"] for w in ("not a regular file", "not found", "named pipe", "device", "folder",
                                               "socket")), rows[0]["error"]


@pytest.mark.parametrize("cid,raw", HOSTILE_NAMES, ids=[c[0] for c in HOSTILE_NAMES])
def test_hostile_name_cannot_forge_a_row_or_a_line(cid, raw, folder_run, hostile_tree):
    """The name is kept exactly (CSV: its bytes, a formula neutralised with a leading '; JSONL: escapes that
    ``json.loads`` + ``os.fsencode`` give back), the CSV and JSONL hold one record per input, and the console shows
    the name escaped on one line."""
    res, out, before, after = folder_run
    _the_run_held(res, before, after)
    data = hostile_tree[1]
    expected = os.fsdecode(bytes(data) + b"/" + raw)
    rows = _csv_rows(out / "r.csv")
    n_inputs = len([p for p in data.iterdir()])
    assert len(rows) == n_inputs, f"{len(rows)} CSV records for {n_inputs} inputs"
    sources = [r["source"] for r in rows]
    neutral = "'" + expected if os.path.basename(expected)[:1] in "=+-@\t" else expected
    assert expected in sources or neutral in sources or ("'" + expected) in sources, (expected, sources[:3])
    jrows = _jsonl_rows(out / "r.jsonl")
    assert len(jrows) == n_inputs
    assert any(os.fsencode(r["source"]) == bytes(data) + b"/" + raw for r in jrows), cid
    # the console: one line per input, nothing raw that a terminal would act on
    assert "\x1b" not in res.stdout and "\r" not in res.stdout and "\u202e" not in res.stdout
    result_lines = [line for line in res.stdout.splitlines() if line[:1].isdigit() and "/" in line.split(" ")[0]]
    assert len(result_lines) == n_inputs, f"{len(result_lines)} result lines for {n_inputs} inputs"


# ---------------------------------------------------------------------- model files
@pytest.fixture(scope="module")
def tflite_bytes(exported_artifacts) -> bytes:
    return Path(exported_artifacts["tflite-float32"]).read_bytes()


@pytest.fixture(scope="module")
def one_image(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("img") / "one.png"
    p.write_bytes(good_png(3))
    return p


@pytest.fixture(scope="module")
def zip_bomb_results(tmp_path_factory, tflite_bytes):
    """Every ZIP_BOMBS model read by ``edgecnn.modelcard.read`` (what run, info, load and bench call) in one child
    capped at AS_LIMIT_MB: one line per case, the child's peak RSS for all of them."""
    root = tmp_path_factory.mktemp("zips")
    paths = {}
    for cid, build, _ in ZIP_BOMBS:
        paths[cid] = root / f"{cid}.tflite"
        paths[cid].write_bytes(tflite_bytes + build())  # type: ignore[operator]
    before = _hashes(root)
    code = "\n".join([
        "import edgecnn.modelcard as mc",
        "from edgecnn.errors import EdgeCNNError",
        f"for cid, path in {({k: str(v) for k, v in paths.items()})!r}.items():",
        "    try:",
        "        mc.read(path)",
        "        print(f'CASE {cid} NO-ERROR')",
        "    except EdgeCNNError as exc:",
        "        print(f'CASE {cid} {type(exc).__name__}: {exc}'.replace(chr(10), ' '))",
    ])
    res = python(code, timeout=120)
    return res, before, _hashes(root)


@pytest.mark.parametrize("case", ZIP_BOMBS, ids=[c[0] for c in ZIP_BOMBS])
def test_zip_after_the_model_is_read_within_bounds(case, zip_bomb_results):
    """Zip bombs, fan-outs, lying sizes, bzip2/lzma/zip64 fallbacks and damaged members zipped after a real model:
    one ModelError line each; the child reading all of them peaks under BOMB_RSS_MB."""
    cid, _, words = case
    res, before, after = zip_bomb_results
    assert_clean_success(res, rss_mb=BOMB_RSS_MB)
    assert before == after
    line = next(line for line in res.stdout.splitlines() if line.startswith(f"CASE {cid} "))
    assert "ModelError" in line and f"{cid}.tflite" in line, line
    for w in words:
        assert w in line, f"{w!r} not in {line!r}"


@pytest.mark.parametrize("cid", ["deflate-lies-1KB-inflates-256MB", "corrupt-deflate"])
def test_zip_bomb_through_the_cli_is_one_line(cid, tmp_path, tflite_bytes, one_image):
    build, words = next((b, w) for c, b, w in ZIP_BOMBS if c == cid)
    model = tmp_path / "model.tflite"
    model.write_bytes(tflite_bytes + build())  # type: ignore[operator]
    before = _hashes(model, one_image)
    res = edgecnn("run", model, "-s", one_image)
    assert_clean_failure(res, "model.tflite", *words, code=1, rss_mb=BOMB_RSS_MB)
    assert _hashes(model, one_image) == before


@pytest.fixture(scope="module")
def fanout_model(tmp_path_factory, tflite_bytes) -> Path:
    p = tmp_path_factory.mktemp("fan") / "fanout.tflite"
    p.write_bytes(with_metadata(tflite_bytes, fanout_metadata()))
    return p


@pytest.mark.parametrize("command", ["info", "run"])
def test_metadata_fan_out_is_bounded(command, fanout_model, one_image):
    """A 160 KB TFLITE_METADATA whose 20,000 tensors share one 20,000-file list (4e8 files expanded)."""
    before = _hashes(fanout_model)
    args = ["info", fanout_model] if command == "info" else ["run", fanout_model, "-s", one_image]
    res = edgecnn(*args)
    assert_clean_failure(res, "TFLITE_METADATA", code=1, rss_mb=BOMB_RSS_MB)
    assert _hashes(fanout_model) == before


# ---------------------------------------------------------------------- cards (in process: no memory risk)
def _card(exported_artifacts) -> dict:
    import onnx

    model = onnx.load(str(exported_artifacts["onnx-float32"]))
    return json.loads(next(p.value for p in model.metadata_props if p.key == "edgecnn.modelcard"))


def _set(card: dict, path: str, value) -> dict:
    out = json.loads(json.dumps(card))
    node = out
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return out


#: (case id, how the card is spoiled, words of the one error line).
CARD_CASES: list[tuple[str, object, tuple[str, ...]]] = [
    ("not-an-object", lambda c: ["labels", "alpha"], ("JSON object",)),
    ("a-string", lambda c: "labels", ("JSON object",)),
    ("labels-a-string", lambda c: _set(c, "labels", "alpha,beta,gamma"), ("labels",)),
    ("labels-nested", lambda c: _set(c, "labels", [["alpha"], ["beta"], ["gamma"]]), ("labels[0]",)),
    ("labels-deeply-nested", lambda c: json.loads("[" * 50 + "]" * 50) and c | {"labels": "DEEP"}, ("nested",)),
    ("labels-wrong-count", lambda c: _set(c, "labels", ["alpha", "beta"]), ("labels",)),
    ("labels-zero-classes", lambda c: _set(c, "labels", []), ("labels",)),
    ("labels-numbers", lambda c: _set(c, "labels", [1, 2, 3]), ("labels[0]",)),
    ("label-too-long", lambda c: _set(c, "labels", ["a" * 5000, "b", "c"]), ("labels[0]",)),
    ("input-size-absurd", lambda c: _set(c, "input.height", 100000), ("input.height",)),
    ("input-size-zero", lambda c: _set(c, "input.width", 0), ("input.width",)),
    ("input-size-text", lambda c: _set(c, "input.width", "24"), ("input.width",)),
    ("input-channels-4", lambda c: _set(c, "input.channels", 4), ("input.channels",)),
    ("input-channels-vs-model", lambda c: _set(_set(c, "input.channels", 1), "preprocessing.color", "grayscale"),
     ("input.channels",)),
    ("input-not-object", lambda c: _set(c, "input", [24, 24, 3]), ("input",)),
    ("input-missing", lambda c: {k: v for k, v in c.items() if k != "input"}, ("input",)),
    ("range-reversed", lambda c: _set(c, "input.range", [255, 0]), ("input.range",)),
    ("layout-unknown", lambda c: _set(c, "input.layout", "NWCH"), ("input.layout",)),
    ("mean-2-for-3-channels", lambda c: _set(c, "preprocessing.mean", [0.5, 0.5]), ("preprocessing.mean",)),
    ("std-zero", lambda c: _set(c, "preprocessing.std", [0]), ("preprocessing.std[0]",)),
    ("std-negative", lambda c: _set(c, "preprocessing.std", [-1, 1, 1]), ("preprocessing.std[0]",)),
    ("std-nan", lambda c: _set(c, "preprocessing.std", [float("nan")]), ("preprocessing.std[0]",)),
    ("color-unknown", lambda c: _set(c, "preprocessing.color", "cmyk"), ("preprocessing.color",)),
    ("resize-unknown", lambda c: _set(c, "preprocessing.resize", "magic"), ("preprocessing.resize",)),
    ("resize-mode-unknown", lambda c: _set(c, "preprocessing.resize_mode", "zoom"), ("preprocessing.resize_mode",)),
    ("activation-unknown", lambda c: _set(c, "output.activation", "relu6"), ("output.activation",)),
    ("units-vs-labels", lambda c: _set(c, "output.units", 7), ("labels",)),
    ("quant-scale-zero", lambda c: _set(c, "output.quantization", {"scale": 0, "zero_point": 0}),
     ("output.quantization.scale",)),
    ("preprocessing-a-list", lambda c: _set(c, "preprocessing", ["rgb"]), ("preprocessing",)),
    ("scale-infinite", lambda c: _set(c, "preprocessing.scale", float("inf")), ("preprocessing.scale",)),
    ("not-json", lambda c: "{not json", ("JSON",)),
]


@pytest.mark.parametrize("case", CARD_CASES, ids=[c[0] for c in CARD_CASES])
def test_every_card_value_is_validated(case, tmp_path, exported_artifacts, one_image):
    """A card that is not an object, of the wrong type, count or range: one line naming the field, exit 1; no
    row turned "unknown" or "unreadable" without one error."""
    from typer.testing import CliRunner

    from edgecnn.cli import app

    cid, spoil, words = case
    card = spoil(_card(exported_artifacts))  # type: ignore[operator]
    if card == "{not json":
        text = card
    elif isinstance(card, dict) and card.get("labels") == "DEEP":
        text = json.dumps(card).replace('"DEEP"', "[" * 100000 + "]" * 100000)
    else:
        text = json.dumps(card)
    model = onnx_with_props(Path(exported_artifacts["onnx-float32"]), tmp_path / "model.onnx",
                            {"edgecnn.modelcard": text})
    before = _hashes(model, one_image)
    res = CliRunner().invoke(app, ["run", str(model), "-s", str(one_image)])
    assert res.exit_code == 1, f"{cid}: exit {res.exit_code}\n{res.output}"
    assert not isinstance(res.exception, BaseException) or isinstance(res.exception, SystemExit), repr(res.exception)
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in res.output, res.output
    for w in words:
        assert w in errors[0], f"{w!r} not in {errors[0]!r}"
    assert _hashes(model, one_image) == before


def test_invalid_utf8_in_onnx_metadata_is_one_line(tmp_path, exported_artifacts, one_image):
    model = onnx_with_props(Path(exported_artifacts["onnx-float32"]), tmp_path / "model.onnx",
                            raw_props=[(b"author\xff\xfe", b"caf\xe9 \xc3\x28")])
    res = edgecnn("run", model, "-s", one_image)
    assert_clean_failure(res, "UTF-8", code=1)


def test_deeply_nested_onnx_labels_are_one_line(tmp_path, exported_artifacts, one_image):
    """ONNX metadata ``labels`` nested 100,000 deep (RecursionError in json) on a model without a card."""
    model = onnx_with_props(Path(exported_artifacts["onnx-float32"]), tmp_path / "model.onnx",
                            {"labels": "[" * 100000 + "]" * 100000}, drop=("edgecnn.modelcard",))
    res = edgecnn("run", model, "-s", one_image)
    assert_clean_failure(res, "nested", code=1)


# ---------------------------------------------------------------------- faults through the CLI
def test_fifo_as_source_is_refused_not_a_hang(tmp_path, exported_artifacts):
    fifo = tmp_path / "cam.png"
    os.mkfifo(fifo)
    res = edgecnn("run", exported_artifacts["tflite-float32"], "-s", fifo, timeout=60)
    assert_clean_failure(res, "cam.png", code=1)


@pytest.mark.parametrize("option", ["--save-csv", "--save-jsonl"])
def test_fifo_as_result_log_is_refused_not_a_hang(option, tmp_path, exported_artifacts, one_image):
    fifo = tmp_path / "log.csv"
    os.mkfifo(fifo)
    res = edgecnn("run", exported_artifacts["tflite-float32"], "-s", one_image, option, fifo, timeout=60)
    assert_clean_failure(res, "log.csv", "regular file", code=1)


@pytest.mark.parametrize("what", ["list.txt", "modelcard.json"])
def test_a_fifo_where_a_small_file_is_read_is_one_line(what, tmp_path, exported_artifacts, one_image):
    """A FIFO as the list of paths (--source LIST.txt), or as the modelcard.json beside a model without a card:
    refused without blocking."""
    if what == "list.txt":
        os.mkfifo(tmp_path / "list.txt")
        res = edgecnn("run", exported_artifacts["tflite-float32"], "-s", tmp_path / "list.txt", timeout=60)
    else:
        model = onnx_with_props(Path(exported_artifacts["onnx-float32"]), tmp_path / "model.onnx",
                                drop=("edgecnn.modelcard",))
        os.mkfifo(tmp_path / "modelcard.json")
        res = edgecnn("run", model, "-s", one_image, timeout=60)
    assert_clean_failure(res, what, "regular file", code=1)


def test_dev_zero_as_source_is_one_line(exported_artifacts):
    res = edgecnn("run", exported_artifacts["tflite-float32"], "-s", "/dev/zero", timeout=60)
    assert_clean_failure(res, "zero", code=1, rss_mb=BOMB_RSS_MB)


@pytest.mark.parametrize("command", ["run", "info"])
@pytest.mark.parametrize("kind", ["fifo.tflite", "dev-zero-link.onnx"])
def test_a_model_that_is_not_a_regular_file_is_refused(kind, command, tmp_path, one_image):
    """A FIFO never ends; /dev/zero behind a link named model.onnx once took `info` to SIGKILL (memory)."""
    model = tmp_path / kind
    if kind.startswith("fifo"):
        os.mkfifo(model)
    else:
        model.symlink_to("/dev/zero")
    args = ["run", model, "-s", one_image] if command == "run" else ["info", model]
    res = edgecnn(*args, timeout=60)
    assert_clean_failure(res, kind, code=1, rss_mb=BOMB_RSS_MB)


def test_dangling_symlink_output_is_refused_and_its_target_not_created(tmp_path, exported_artifacts, one_image):
    link = tmp_path / "r.csv"
    target = tmp_path / "elsewhere" / "planted.csv"
    target.parent.mkdir()
    link.symlink_to(target)
    res = edgecnn("run", exported_artifacts["tflite-float32"], "-s", one_image, "--save-csv", link)
    assert_clean_failure(res, "symlink", "--follow-symlinks", code=2)
    assert not target.exists()


def test_symlink_to_someone_elses_file_gets_no_rows(tmp_path, exported_artifacts, one_image):
    theirs = tmp_path / "theirs.txt"
    theirs.write_bytes(b"")
    link = tmp_path / "r.jsonl"
    link.symlink_to(theirs)
    res = edgecnn("run", exported_artifacts["tflite-float32"], "-s", one_image, "--save-jsonl", link)
    assert_clean_failure(res, "symlink", code=2)
    assert theirs.read_bytes() == b""


def test_follow_symlinks_is_the_way_to_write_through_one(tmp_path, exported_artifacts, one_image):
    target = tmp_path / "real.csv"
    link = tmp_path / "r.csv"
    link.symlink_to(target)
    res = edgecnn("run", exported_artifacts["tflite-float32"], "-s", one_image, "--save-csv", link,
                  "--follow-symlinks")
    assert_clean_success(res)
    assert len(_csv_rows(target)) == 1


def test_export_out_into_the_run_folder_is_refused(tmp_path, tiny_run):
    from typer.testing import CliRunner

    from edgecnn.cli import app

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = _hashes(run)
    res = CliRunner().invoke(app, ["export", str(run), "--out", str(run)])
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert res.exit_code == 2 and len(errors) == 1 and "folder of the input" in errors[0], res.output
    assert _hashes(run) == before


def test_max_pixels_is_one_setting_for_every_decoder(tmp_path, exported_artifacts):
    """--max-pixels 300 (and EDGECNN_MAX_PIXELS) refuses a 20x20 PNG decoded by OpenCV (folder, threads) and by
    Pillow (one image); 0 is a usage error."""
    data = tmp_path / "d"
    data.mkdir()
    for i in range(3):
        (data / f"{i}.png").write_bytes(good_png(i))
    model = exported_artifacts["tflite-float32"]
    res = edgecnn("run", model, "-s", data, "--max-pixels", "300", "--workers", "2", "--save-csv", tmp_path / "a.csv")
    assert_clean_failure(res, "Nothing was classified", code=1)
    assert all("over the limit of 300" in r["error"] for r in _csv_rows(tmp_path / "a.csv"))
    res = edgecnn("run", model, "-s", data / "0.png", env={"EDGECNN_MAX_PIXELS": "300"})
    assert_clean_failure(res, code=1)
    res = edgecnn("run", model, "-s", data / "0.png", "--max-pixels", "0")
    assert res.code == 2 and "Traceback" not in res.output


def test_markup_in_an_output_path_is_printed_as_written(tmp_path, exported_artifacts, shapes_dir):
    """A folder named ``r [/]`` (Rich's closing tag) as evaluate's --out: its "Saved ..." line printed as is."""
    out = tmp_path / "r [/]" / "ev"
    res = edgecnn("evaluate", exported_artifacts["tflite-float32"], "--data", shapes_dir, "--out", out)
    assert_clean_success(res)
    assert "r [/]" in res.stdout and (out / "metrics.json").exists()


def test_nan_and_inf_scores_are_null_with_a_status(tmp_path, exported_artifacts, one_image):
    card = _card(exported_artifacts)
    for value, name in ((float("nan"), "nan"), (float("inf"), "inf")):
        model = nonfinite_onnx(tmp_path / f"{name}.onnx", value, card)
        out = tmp_path / f"{name}.jsonl"
        res = edgecnn("run", model, "-s", one_image, "--save-jsonl", out, "--save-csv", tmp_path / f"{name}.csv")
        assert_clean_failure(res, "Nothing was classified", code=1)
        row = _jsonl_rows(out)[0]  # strict JSON: NaN would not parse
        assert row["score"] is None and row["status"] == "skipped" and "non-finite" in row["error"], row
        assert ": NaN" not in out.read_text() and ": Infinity" not in out.read_text()


def test_terminal_escapes_and_markup_in_labels_are_shown_not_run(tmp_path, exported_artifacts, one_image):
    """Labels that clear the screen, set a hyperlink, write the clipboard (OSC 52) or hold Rich markup are printed
    escaped by run and info; ``[/]`` in a description does not crash info."""
    card = _card(exported_artifacts)
    card["labels"] = ["\x1b[2J\x1b[Hcleared", "\x1b]52;c;ZXZpbA==\x07clip", "[/][bold red]x[/]"]
    card["provenance"] = {"description": "[/] [link=http://x]y[/link]"}
    model = onnx_with_props(Path(exported_artifacts["onnx-float32"]), tmp_path / "model.onnx",
                            {"edgecnn.modelcard": json.dumps(card)}, doc_string="[/] closing tag \x1b[31mred")
    for args in (["run", model, "-s", one_image, "--top-k", "3"], ["info", model]):
        res = edgecnn(*args, env={"FORCE_COLOR": "1"} if args[0] == "info" else None)
        assert_clean_success(res)
        assert "\x1b[2J" not in res.stdout and "\x1b]52" not in res.stdout and "\x07" not in res.stdout, res.stdout
    assert "[/]" in res.stdout  # shown as written, not taken as markup


@pytest.mark.parametrize("url,secret", [
    ("rtsp://admin:S3c@cr/t@127.0.0.1:9/x", ["S3c", "cr/t"]),
    ("rtsp://127.0.0.1:9/x?passwd=pa55&pw=pw1&token=t0k&sig=s1g&api_key=k3y", ["pa55", "pw1", "t0k", "s1g", "k3y"]),
    ("http://user:p%40ss@127.0.0.1:9/v.mjpg?access_token=zz9", ["p%40ss", "zz9"]),
])
def test_secrets_never_reach_the_console(url, secret, exported_artifacts):
    res = edgecnn("run", exported_artifacts["tflite-float32"], "-s", url, "--reconnect-tries", "0", timeout=90)
    assert_clean_failure(res, code=1)
    for s in secret:
        assert s not in res.output, res.output


def test_secret_param_masks_a_name_of_yours(exported_artifacts):
    res = edgecnn("run", exported_artifacts["tflite-float32"], "-s", "rtsp://127.0.0.1:9/x?camkey2=hunter22",
                  "--secret-param", "camkey2", "--reconnect-tries", "0", timeout=90)
    assert_clean_failure(res, code=1)
    assert "hunter22" not in res.output


# ---------------------------------------------------------------------- the Python API, in a capped child
API_CASES = {
    "bytes-bomb": "clf.predict(BOMB)",
    "path-bomb": "clf.predict(BOMB_PATH)",
    "pil-bomb": "clf.predict(PIL.Image.open(PIL_BOMB_PATH))",  # lazily opened: over our limit, under Pillow's 2x
    "path-fifo": "clf.predict(FIFO)",
    "path-dev-zero": "clf.predict('/dev/zero')",
    "stream-list-fifo": "list(clf.stream(source=LIST, skip_unreadable=False))",
    "after-close": "(clf.close(), clf.predict(GOOD))",
}


@pytest.fixture(scope="module")
def api_results(tmp_path_factory, exported_artifacts):
    root = tmp_path_factory.mktemp("api")
    bomb = root / "bomb.png"
    bomb.write_bytes(png_bomb(12000, 12000))
    pil_bomb = root / "pil-bomb.png"
    pil_bomb.write_bytes(png_bomb(9000, 9000))
    fifo = root / "fifo.png"
    os.mkfifo(fifo)
    good = root / "good.png"
    good.write_bytes(good_png(1))
    lst = root / "list.txt"
    lst.write_text(f"{good}\n{fifo}\n")
    code = "\n".join([
        "import sys, PIL.Image, edgecnn",
        "from edgecnn.errors import EdgeCNNError",
        f"BOMB_PATH, FIFO, GOOD, LIST = {str(bomb)!r}, {str(fifo)!r}, {str(good)!r}, {str(lst)!r}",
        f"PIL_BOMB_PATH = {str(pil_bomb)!r}",
        "BOMB = open(BOMB_PATH, 'rb').read()",
        f"for name, expr in {API_CASES!r}.items():",
        f"    clf = edgecnn.load({str(exported_artifacts['tflite-float32'])!r})",
        "    try:",
        "        eval(expr)",
        "        print(f'CASE {name} NO-ERROR')",
        "    except EdgeCNNError as exc:",
        "        print(f'CASE {name} {type(exc).__name__}: {exc}'.replace(chr(10), ' '))",
    ])
    before = _hashes(root)
    res = python(code, timeout=120)
    return res, before, _hashes(root)


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_api_refuses_in_one_clear_error(case, api_results):
    """predict(bytes | path | PIL) of a bomb, a FIFO, /dev/zero; a stream with a FIFO; predict() after close():
    each an EdgeCNNError (one line), in a child capped at AS_LIMIT_MB, peak RSS under BOMB_RSS_MB."""
    res, before, after = api_results
    assert_clean_success(res, rss_mb=BOMB_RSS_MB)
    assert before == after
    line = next(line for line in res.stdout.splitlines() if line.startswith(f"CASE {case} "))
    assert "NO-ERROR" not in line and "Error" in line, line
    if "bomb" in case:
        assert "over the limit" in line, line
    if case == "after-close":
        assert "closed" in line, line


def test_evaluate_skips_a_bomb_in_its_data(tmp_path, exported_artifacts, shapes_dir):
    data = tmp_path / "data"
    for cls in ("alpha", "beta", "gamma"):
        (data / cls).mkdir(parents=True)
        for f in sorted((shapes_dir / cls).glob("*.png"))[:2]:
            shutil.copy2(f, data / cls / f.name)
    (data / "alpha" / "bomb.png").write_bytes(png_bomb(12000, 12000))
    before = _hashes(data)
    res = edgecnn("evaluate", exported_artifacts["tflite-float32"], "--data", data, "--out", tmp_path / "ev")
    assert_clean_success(res, rss_mb=BOMB_RSS_MB)
    assert "skipped" in res.stdout and "bomb.png" in res.stdout and "over the limit" in res.stdout
    assert _hashes(data) == before


def test_train_skips_a_bomb_in_its_data(tmp_path, shapes_dir):
    """Training's decode path (``training.datasets.decode_files``, what ``edgecnn train`` loads its folders with)
    skips a bomb from its header, with the reason; the good files decode."""
    from edgecnn.training.datasets import decode_files

    files = sorted((shapes_dir / "alpha").glob("*.png"))[:3]
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(12000, 12000))
    before = _hashes(bomb, *files)
    images, ok, failed = decode_files([*files, bomb], 16, 16, "rgb", "area", workers=2)
    assert len(images) == 3 and list(ok) == [True, True, True, False]
    assert failed[0][0] == bomb and "over the limit" in failed[0][1]
    assert _hashes(bomb, *files) == before


# ---------------------------------------------------------------------- debris
def test_a_killed_parquet_run_leaves_nothing_the_next_run_keeps(tmp_path, exported_artifacts, shapes_dir):
    pytest.importorskip("pyarrow")
    out = tmp_path / "out"
    model = exported_artifacts["tflite-float32"]
    res = edgecnn("run", model, "-s", shapes_dir, "--save-parquet", out / "r.parquet", as_mb=4096,  # pyarrow's pools
                  env={"EDGECNN_FAULT_POINT": "run:row", "EDGECNN_FAULT_AFTER": "5"})
    assert res.code == -9, res.output
    leftovers = [p.name for p in out.iterdir()]
    assert leftovers and all(".edgecnn-tmp-" in n for n in leftovers), leftovers
    res = edgecnn("run", model, "-s", shapes_dir / "alpha", "--save-parquet", out / "r.parquet", as_mb=4096)
    assert_clean_success(res)
    assert sorted(p.name for p in out.iterdir()) == ["r.parquet"]


def test_clean_removes_dead_temps_and_keeps_live_ones(tmp_path):
    dead = tmp_path / ".r.csv.edgecnn-tmp-999999999-abcd.tmp.csv"
    live = tmp_path / f".r.csv.edgecnn-tmp-{os.getpid()}-abcd.tmp.csv"
    mine = tmp_path / ".notes.tmp"
    for p in (dead, live, mine):
        p.write_bytes(b"x")
    res = edgecnn("clean", tmp_path)
    assert_clean_success(res)
    assert not dead.exists() and live.exists() and mine.exists()
    res = edgecnn("clean", tmp_path / "nope")
    assert_clean_failure(res, "nope", code=1)


# ---------------------------------------------------------------------- the service unit
@pytest.mark.parametrize("folder", ["with space", "per%cent %n %i", 'quo"te\'s', "ünïcødé ✓", "back\\slash $HOME"])
def test_unit_for_awkward_paths_passes_systemd_analyze_verify(folder, tmp_path, exported_artifacts):
    from typer.testing import CliRunner

    from edgecnn.cli import app

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd; in DEB_PACKAGES)")
    where = tmp_path / folder
    where.mkdir()
    model = Path(shutil.copy2(exported_artifacts["tflite-float32"], where / "my model.tflite"))
    unit = tmp_path / "edgecnn-verify.service"
    res = CliRunner().invoke(app, ["devices", "service", str(model), "-o", str(unit), "--source",
                                   "rtsp://cam/x?token=abc123", "--env-file", str(where / "s.env"),
                                   "--args", f"--save-jsonl {shlex.quote(str(where / 'logs' / 'r.jsonl'))}"])
    assert res.exit_code == 0, res.output
    text = unit.read_text()
    assert "abc123" not in text and "User=edgecnn" in text and "Nice=" not in text
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "ProtectHome=yes",
                 "DeviceAllow=char-video4linux rw", "DeviceAllow=char-gpiochip rw", "ReadWritePaths="):
        assert line in text, line
    exe = next(x for x in text.splitlines() if x.startswith("ExecStart=")).split(" ", 1)
    unit.write_text(text.replace(exe[0], f"ExecStart={sys.executable}"))
    import subprocess

    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [x for x in done.stderr.splitlines() if "edgecnn-verify" in x and "nobody" not in x]
    assert done.returncode == 0 and not problems, done.stderr
    env = unit.with_suffix(".env")
    assert (env.stat().st_mode & 0o777) == 0o600 and "abc123" in env.read_text()


def test_unit_refuses_a_secret_in_args(tmp_path, exported_artifacts):
    from typer.testing import CliRunner

    from edgecnn.cli import app

    res = CliRunner().invoke(app, ["devices", "service", str(exported_artifacts["tflite-float32"]), "-o",
                                   str(tmp_path / "edgecnn-x.service"), "--args",
                                   "--source-x http://u:hunter2@h/x"])
    assert res.exit_code == 2 and "hunter2" not in res.output and "Traceback" not in res.output, res.output


def test_the_tables_count():
    """Issue 19 asks for at least 100 bad inputs and 30 faults; these tables and tests are the count."""
    bad_inputs = 2 * len(BAD_IMAGES) + len(SPECIAL) + len(HOSTILE_NAMES) + len(ZIP_BOMBS) + 2 + len(CARD_CASES) + 2
    faults = 1 + 1 + 2 + 2 + 1 + 4 + 3 + 1 + 1 + 2 + 1 + 3 + 1 + len(API_CASES) + 2 + 2 + 5 + 1 + 2
    assert bad_inputs >= 100 and faults >= 30, (bad_inputs, faults)
    assert AS_LIMIT_MB <= 2048 and BOMB_RSS_MB <= 300
