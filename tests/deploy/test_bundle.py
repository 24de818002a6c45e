"""``edgecnn bundle``: what a bundle holds, its refusals (one line each), keys, and the box's Ed25519 verifier
checked against ``cryptography``'s signatures."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from edgecnn.deploy import ed25519

from .conftest import TARGET

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "edgecnn", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=600)


def one_error(res: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert res.returncode == code, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, res.stderr
    for n in needles:
        assert n in errors[0], (n, errors[0])


# ---------------------------------------------------------------------- the verifier shipped to the box
def test_ed25519_verifier_matches_cryptography():
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    for i in range(8):
        key = Ed25519PrivateKey.generate()
        pem = key.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo)
        raw = ed25519.public_key_from_pem(pem)
        assert raw == key.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
        assert ed25519.public_key_to_pem(raw).encode() == pem
        msg = os.urandom(i * 97)
        sig = key.sign(msg)
        ed25519.verify(raw, msg, sig)
        with pytest.raises(ed25519.BadSignature):
            ed25519.verify(raw, msg + b"x", sig)
        bad = bytearray(sig)
        bad[i] ^= 0x40
        with pytest.raises(ed25519.BadSignature):
            ed25519.verify(raw, msg, bytes(bad))
        other = Ed25519PrivateKey.generate().public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
        with pytest.raises(ed25519.BadSignature):
            ed25519.verify(other, msg, sig)
    # S + L: the same signature made malleable is refused (S must be reduced)
    s_int = int.from_bytes(sig[32:], "little") + ed25519._L
    with pytest.raises(ed25519.BadSignature, match="S >= L"):
        ed25519.verify(raw, msg, sig[:32] + s_int.to_bytes(32, "little"))


def test_ed25519_rfc8032_vectors():
    """RFC 8032 section 7.1, tests 1-3."""
    vectors = [
        ("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        ("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        ("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
         "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ]
    for pk, msg, sig in vectors:
        ed25519.verify(bytes.fromhex(pk), bytes.fromhex(msg), bytes.fromhex(sig))


def test_new_key_is_private_and_never_overwritten(tmp_path):
    key = tmp_path / "keys" / "station.key"
    res = cli("bundle", "--new-key", key)
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert ed25519.public_key_from_pem(Path(f"{key}.pub").read_bytes())
    before = key.read_bytes()
    one_error(cli("bundle", "--new-key", key), 1, "never overwritten")
    assert key.read_bytes() == before


# ---------------------------------------------------------------------- building
def test_bundle_holds_everything_the_manifest_lists(bundles):
    with tarfile.open(bundles["b"]) as tar:
        names = tar.getnames()
        top = names[0].split("/")[0]
        manifest = json.loads(tar.extractfile(f"{top}/MANIFEST.json").read())
        for rel, entry in manifest["files"].items():
            data = tar.extractfile(f"{top}/{rel}").read()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"], rel
        install = tar.getmember(f"{top}/install")
        assert install.mode & 0o111
        sig = tar.extractfile(f"{top}/MANIFEST.sig").read()
        raw = tar.extractfile(f"{top}/MANIFEST.json").read()
    import base64

    ed25519.verify(ed25519.public_key_from_pem(bundles["pub"].read_bytes()), raw, base64.b64decode(sig))
    assert top == f"edgecnn-{manifest['id']}"
    assert manifest["target"]["name"] == TARGET and manifest["target"]["machine"] == "x86_64"
    assert manifest["requirement"].startswith("edgecnn[onnx]==")
    assert manifest["source"]["kind"] == "deploy-profile" and manifest["deploy_profile"] == "model/deploy.json"
    wheels = [n for n in manifest["files"] if n.startswith("wheels/")]
    assert any("onnxruntime" in w for w in wheels) and any(w.startswith("wheels/edgecnn-") for w in wheels)
    assert not any("tensorflow" in w or "ai_edge_litert" in w for w in wheels)  # the one runtime it needs
    assert {"installer/installer.py", "installer/releases.py", "installer/ed25519.py", "unit/edgecnn.service",
            "model/golden.npz"} <= set(manifest["files"])


def test_installer_uses_only_the_standard_library():
    """The box runs the installer on a bare python3: it imports nothing outside the standard library."""
    import ast

    here = ROOT / "edgecnn" / "deploy"
    shipped = {"installer", "releases", "ed25519"}
    for name in shipped:
        tree = ast.parse((here / f"{name}.py").read_text())
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for mod in mods:
                top = mod.split(".")[0]
                assert top in sys.stdlib_module_names or top in shipped or mod == "edgecnn.errors", (name, mod)


def test_refusals_are_one_line(tmp_path, exported_artifacts, wheelhouse):
    art = exported_artifacts["onnx-float32"]
    # a target with no wheel platform: says why
    one_error(cli("bundle", art, "--target", "coral-devboard", "-o", tmp_path / "c.tar.gz"), 2,
              "coral-devboard cannot be bundled")
    # a wheel the target lacks (an empty wheelhouse): names the package and the platform
    empty = tmp_path / "empty"
    empty.mkdir()
    one_error(cli("bundle", art, "--target", TARGET, "-o", tmp_path / "x.tar.gz", "--wheelhouse", empty), 1,
              "No wheel of", "manylinux_2_28_x86_64", "--wheelhouse")
    assert not (tmp_path / "x.tar.gz").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".x.tar")]
    # an artifact without golden.npz beside it
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / art.name).write_bytes(art.read_bytes())
    one_error(cli("bundle", lone / art.name, "--target", TARGET, "-o", tmp_path / "y.tar.gz"), 1, "golden.npz")
    one_error(cli("bundle", art, "--target", TARGET, "-o", tmp_path / "y.zip"), 2, ".tar.gz")
    one_error(cli("bundle", art, "--target", "rpi9", "-o", tmp_path / "y.tar.gz"), 2, "rpi9")
    one_error(cli("bundle", art, "--target", TARGET, "--python", "three", "-o", tmp_path / "y.tar.gz"), 2, "--python")


def test_cli_bundles_an_export_folder_for_its_target(tmp_path, exported_artifacts, wheelhouse):
    """An export folder gives the artifact the target's profile names (x86-cpu: ONNX float32); the CLI prints the
    size and the command to run on the box."""
    out = tmp_path / "x86.tar.gz"
    res = cli("bundle", exported_artifacts["dir"], "--target", TARGET, "-o", out, "--wheelhouse", wheelhouse)
    assert res.returncode == 0, res.stderr
    assert "sh edgecnn-" in res.stdout and "MB" in res.stdout
    with tarfile.open(out) as tar:
        top = tar.getnames()[0].split("/")[0]
        manifest = json.loads(tar.extractfile(f"{top}/MANIFEST.json").read())
    assert manifest["artifact"]["path"] == "model/model-float32.onnx" and manifest["source"]["kind"] == "export"
    one_error(cli("bundle", exported_artifacts["dir"], "--target", TARGET, "-o", out, "--wheelhouse", wheelhouse), 1,
              "--force")


def test_station_file_is_bundled_with_its_model(tmp_path, exported_artifacts, wheelhouse):
    """A station file: its model read through the station loader, the file shipped beside the bundled model with
    its model path rewritten and its secret placeholders kept (never the build machine's environment)."""
    from edgecnn.deploy.bundle import _Placeholders, build_bundle
    from edgecnn.station.schema import load_station

    station = tmp_path / "conf" / "station.toml"
    station.parent.mkdir()
    art = exported_artifacts["onnx-float32"]
    station.write_text(f'name = "line3"\nmodel = "{os.path.relpath(art, station.parent)}"\n\n[[sources]]\n'
                       'name = "cam1"\nsource = "rtsp://op:{CAM1_PASSWORD}@10.0.0.5/stream"\n')
    res = build_bundle(station, TARGET, tmp_path / "s.tar.gz", wheelhouse=wheelhouse)
    assert res.manifest["source"]["kind"] == "station" and res.manifest["station_file"] == "model/station.toml"
    with tarfile.open(res.path) as tar:
        tar.extractall(tmp_path / "u", filter="data")
    shipped = tmp_path / "u" / f"edgecnn-{res.id}" / "model" / "station.toml"
    text = shipped.read_text()
    assert f'model = "{art.name}"' in text and "{CAM1_PASSWORD}" in text
    assert load_station(shipped, environ=_Placeholders()).model == shipped.parent / art.name

    # on the box: the release's unit runs the station (not `edgecnn run`), its state in PREFIX/state (writable under
    # ProtectSystem=strict, outside the release so the sequence number survives updates), its secret from the env file
    from edgecnn.deploy import releases
    from edgecnn.deploy.selfcheck import write_unit

    preview = (tmp_path / "u" / f"edgecnn-{res.id}" / "unit" / "edgecnn.service").read_text()
    assert (f"edgecnn station run /opt/edgecnn/releases/{res.id}/model/station.toml --state-dir /opt/edgecnn/state"
            in preview), preview
    prefix = tmp_path / "opt" / "edgecnn"
    release = releases.releases_dir(prefix) / res.id
    release.parent.mkdir(parents=True)
    (tmp_path / "u" / f"edgecnn-{res.id}").rename(release)
    unit = write_unit(release, res.manifest, user=None).read_text()
    exec_start = next(ln for ln in unit.splitlines() if ln.startswith("ExecStart="))
    assert exec_start == (f"ExecStart={release}/venv/bin/edgecnn station run {release}/model/station.toml "
                          f"--state-dir {prefix}/state"), exec_start
    rw = next(ln for ln in unit.splitlines() if ln.startswith("ReadWritePaths="))
    assert f"-{prefix}/state" in rw.removeprefix("ReadWritePaths=").split() and "ProtectSystem=strict" in unit
    assert f"EnvironmentFile=/etc/edgecnn/{res.id}.env" in unit and "CAM1_PASSWORD" in unit
    assert releases.make_state_dir(prefix, "edgecnn").is_dir()
    analyze = shutil.which("systemd-analyze")
    if analyze:  # systemd's own reading of the unit (it wants ExecStart's program: the venv is not built here)
        launcher = release / "venv" / "bin" / "edgecnn"
        launcher.parent.mkdir(parents=True)
        launcher.write_text("#!/bin/sh\n")
        launcher.chmod(0o755)
        copy = tmp_path / "edgecnn-station-verify.service"
        copy.write_text(unit)
        done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
        assert not [ln for ln in done.stderr.splitlines() if copy.name in ln or "Unknown" in ln], done.stderr

    # a station file that names its own absolute state_dir keeps it
    shipped = release / "model" / "station.toml"
    shipped.write_text(f'state_dir = "{tmp_path}/line3.state"\n' + shipped.read_text())
    unit = write_unit(release, res.manifest, user=None).read_text()
    assert "--state-dir" not in unit and f"-{tmp_path}/line3.state" in unit


def test_station_run_state_dir_flag_overrides_the_file(tmp_path, exported_artifacts):
    """`station run --state-dir DIR` (what a bundle's unit runs) replaces the file's state_dir in the one plan."""
    from edgecnn.station.plan import resolve

    station = tmp_path / "line.toml"
    station.write_text(f'model = "{exported_artifacts["onnx-float32"]}"\n\n[[sources]]\nname = "cam"\n'
                       f'source = "{tmp_path}"\n')
    assert resolve({"station": station}).state_dir == tmp_path / "line.state"
    assert resolve({"station": station, "state_dir": tmp_path / "s"}).state_dir == tmp_path / "s"


def test_markers_are_evaluated_for_the_target_python(tmp_path):
    """pip download --python-version does not change how markers evaluate: the bundle evaluates edgecnn's own
    requirements for the target (Jetson's 3.10 needs tomli and LiteRT 1.x; Bookworm's 3.11 neither)."""
    from edgecnn.deploy.wheels import build_edgecnn_wheel, marker_environment, wheel_requirements

    wheel = build_edgecnn_wheel(tmp_path)
    on310 = dict(wheel_requirements(wheel, marker_environment("3.10", "aarch64"), ("tflite",)))
    on311 = dict(wheel_requirements(wheel, marker_environment("3.11", "aarch64"), ("tflite",)))
    assert "tomli" in on310 and "tomli" not in on311
    assert "<2" in on310["ai-edge-litert"] and ">=2.3" in on311["ai-edge-litert"]
    assert "onnxruntime" not in on311  # only the extra asked for
