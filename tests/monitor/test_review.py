"""The review page in headless Debian Chromium with real key presses, and a server killed mid-labelling."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from streams import darker, heldout_images, pipeline_events, write_video

from edgecnn.monitor.capture import Capture, CaptureConfig
from edgecnn.monitor.review import ReviewStore, create_app

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -c constraints.txt 'edgecnn[dev]'")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed: make system-deps (apt-get install chromium)")
    return sync_playwright


def _browser(pw, profile: Path):
    return pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                 args=LAUNCH_FLAGS, viewport={"width": 900, "height": 700})


def make_captures(run: Path, held: Path, out: Path, frames: int = 60) -> Path:
    """Captures of a real pipeline run over a darkened stream of held-out images (the model doubts them)."""
    video = write_video(out.parent / f"{out.name}.avi", heldout_images(held), frames, seed=11,
                        transform=darker(0, 0.3))
    cap = Capture(CaptureConfig(enabled=True, below=0.9, margin=0.5, hash_distance=4), out, "sha", start=False)
    for ev in pipeline_events(run, video):
        cap.process(ev)
    cap.close()
    return out


def _wait_cards(page, n: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('.card').length === {n}", timeout=15_000)


def test_label_discard_and_undo_with_key_presses(parent_run, monitor_data, tmp_path):
    sync_playwright = _playwright()
    from edgecnn.serve.http import Server

    caps = make_captures(parent_run, monitor_data / "held", tmp_path / "caps")
    data = tmp_path / "dataset"
    (data / "c0").mkdir(parents=True)
    store = ReviewStore(caps, data, ["c0", "c1", "c2"])
    items = store.items()
    assert len(items) >= 6 and [i.score for i in items] == sorted(i.score for i in items)  # most uncertain first
    (data / "c0" / items[0].path.name).write_bytes(b"an image already in the dataset")  # must not be overwritten
    with Server(create_app(store)) as server, sync_playwright() as pw:
        ctx = _browser(pw, tmp_path / "profile")
        page = ctx.new_page()
        page.goto(server.url + "/")
        _wait_cards(page, len(items))
        assert items[0].label in page.inner_text(".card.current")  # the model's guess on the highlighted one
        page.keyboard.press("1")  # items[0] -> c0 (a file of that name exists: -1 suffix)
        page.keyboard.press("2")  # items[1] -> c1
        page.keyboard.press("x")  # items[2] -> discarded
        _wait_cards(page, len(items) - 3)
        page.keyboard.press("u")  # undo the discard
        _wait_cards(page, len(items) - 2)
        page.keyboard.press("3")  # items[2] -> c2
        _wait_cards(page, len(items) - 3)
        page.screenshot(path=str(tmp_path / "review.png"))
        ctx.close()
    stem, suffix = items[0].path.stem, items[0].path.suffix
    assert (data / "c0" / items[0].path.name).read_bytes() == b"an image already in the dataset"
    assert (data / "c0" / f"{stem}-1{suffix}").is_file()
    assert (data / "c1" / items[1].path.name).is_file() and (data / "c2" / items[2].path.name).is_file()
    assert not (caps / "discarded" / items[2].path.name).exists()
    for it in items[:3]:
        assert not it.path.exists()
    a = ReviewStore(caps, data).audit()
    assert a["labelled"] == 3 and a["discarded"] == 0 and a["pending"] == len(items) - 3
    assert a["missing"] == [] and a["duplicated"] == [] and a["log_mismatch"] == []
    ops = [json.loads(line) for line in (caps / "review.jsonl").read_text().splitlines()]
    assert [r["op"] for r in ops if r["state"] == "pending"] == ["label", "label", "discard", "undo", "label"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(caps: Path, data: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "edgecnn", "review", str(caps), "--data", str(data), "--port",
                             str(port), "--classes", "c0,c1,c2"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/items", timeout=1).read()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read()) from None
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("review server did not start")


@pytest.mark.parametrize("point", ["review:logged", "review:linked"])
def test_killing_the_server_mid_labelling_loses_nothing(parent_run, monitor_data, tmp_path, point):
    """The server is SIGKILLed in the middle of the third move (after its log line / between link and unlink)."""
    sync_playwright = _playwright()
    caps = make_captures(parent_run, monitor_data / "held", tmp_path / "caps")
    data = tmp_path / "dataset"
    n = len(ReviewStore(caps, data, ["c0", "c1", "c2"]).items())
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), EDGECNN_FAULT_POINT=point, EDGECNN_FAULT_AFTER="3")
    proc = _serve(caps, data, port, env)
    try:
        with sync_playwright() as pw:
            ctx = _browser(pw, tmp_path / "profile")
            page = ctx.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            _wait_cards(page, n)
            for key in "1231":
                page.keyboard.press(key)
            assert proc.wait(timeout=30) == -9  # killed by the fault point
            ctx.close()
    finally:
        if proc.poll() is None:
            proc.kill()
    store = ReviewStore(caps, data)  # a restart finishes (or aborts) the interrupted move
    assert store.recovered == 1
    a = store.audit()
    assert a["missing"] == [] and a["duplicated"] == [] and a["log_mismatch"] == []
    assert all(len(p) == 1 for p in a["places"].values())  # every capture in exactly one place
    assert a["labelled"] == (3 if point == "review:linked" else 2)
    assert a["labelled"] + a["pending"] == n
    # the page works again after the restart, and undo reads the recovered log
    proc = _serve(caps, data, port, dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/undo", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
        undone = json.loads(urllib.request.urlopen(req, timeout=10).read())
        assert undone["op"] == "undo"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    a = ReviewStore(caps, data).audit()
    assert a["labelled"] == (2 if point == "review:linked" else 1) and a["duplicated"] == [] and a["missing"] == []


def test_review_refuses_a_folder_without_captures(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "edgecnn", "review", str(tmp_path), "--data", str(tmp_path / "d")],
                       env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "captures.jsonl" in r.stdout + r.stderr and "Traceback" not in r.stderr


def test_only_the_page_itself_can_label(parent_run, monitor_data, tmp_path):
    """A cross-site page cannot label or discard: text/plain bodies, foreign Origins and Hosts are refused."""
    from edgecnn.serve.http import Server

    caps = make_captures(parent_run, monitor_data / "held", tmp_path / "caps", frames=20)
    store = ReviewStore(caps, tmp_path / "data", ["c0", "c1", "c2"])
    first = store.items()[0].id
    body = json.dumps({"id": first, "class": "c0"}).encode()
    with Server(create_app(store)) as server:
        def post(headers):
            req = urllib.request.Request(server.url + "/api/label", data=body, method="POST", headers=headers)
            try:
                return urllib.request.urlopen(req, timeout=10).status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert post({"Content-Type": "text/plain"}) == 415
        assert post({"Content-Type": "application/json", "Origin": "http://evil.example"}) == 403
        assert post({"Content-Type": "application/json", "Host": "evil.example"}) == 403
        assert store.audit()["labelled"] == 0
        assert post({"Content-Type": "application/json", "Origin": server.url}) == 200
    assert store.audit()["labelled"] == 1
