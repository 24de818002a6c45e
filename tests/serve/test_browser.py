"""The live view in a real browser: headless Debian Chromium driven by Playwright (no browser download).

It loads ``/`` from a real server whose source is an OpenCV-written video classified by edgecnn, waits for the
MJPEG image to show and change, checks the labels, health and decisions in the DOM, and keeps a screenshot
(``EDGECNN_SCREENSHOT_DIR`` or the test's tmp folder).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium; "
                                                "make system-deps)"),
]


@pytest.fixture()
def page(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 800})
        try:
            yield browser.pages[0] if browser.pages else browser.new_page()
        finally:
            browser.close()


FRAME_SIGNATURE = """(img) => {
  const c = document.createElement('canvas');
  c.width = 64; c.height = 48;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0, 64, 48);
  const d = g.getImageData(0, 0, 64, 48).data;
  let s = 0;
  for (let i = 0; i < d.length; i += 4) s = (s * 31 + d[i] * 3 + d[i + 1] * 5 + d[i + 2] * 7) % 1000000007;
  return s;
}"""


def test_live_view_in_headless_chromium(live_server, page, tmp_path):
    name = live_server.feed.name
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live_server.url + "/", wait_until="domcontentloaded")
    page.wait_for_function("document.querySelector('img.stream') && document.querySelector('img.stream')"
                           ".naturalWidth > 0", timeout=20000)
    img = page.locator("img.stream")
    assert img.count() == 1
    assert img.get_attribute("src").startswith("/stream/")
    assert img.evaluate("i => i.naturalWidth") >= 320
    # the stream updates: the drawn frame changes (the video cycles red, green, blue)
    first = img.evaluate(FRAME_SIGNATURE)
    deadline = time.monotonic() + 15
    while img.evaluate(FRAME_SIGNATURE) == first:
        assert time.monotonic() < deadline, "the MJPEG image never changed"
        page.wait_for_timeout(200)
    card = page.locator(f".source[data-source='{name}']")
    page.wait_for_function("document.querySelector('.source .label').textContent.length > 1")
    assert card.locator(".label").inner_text() in ("red", "green", "blue")
    assert 0.9 <= float(card.locator(".score").inner_text()) <= 1.0
    assert card.locator(".fps").inner_text().endswith("fps")
    page.wait_for_selector("#decisions tr.decision")
    verdicts = page.locator("#decisions td.verdict").all_inner_texts()
    assert verdicts and set(verdicts) <= {"red", "green", "blue"}
    assert page.locator("#health").inner_text() == "ready"
    assert page.locator("#model-name").inner_text() == "color"
    assert live_server.state.live.sources[name].viewers >= 1  # the browser's stream is a viewer
    out = Path(os.environ.get("EDGECNN_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    shot = out / "live_view.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    assert not errors, errors


def test_login_page_then_live_view_with_a_token(color_onnx, colour_video, page):
    from edgecnn.serve.config import ServeConfig
    from edgecnn.serve.server import open_server

    token = "browser-" + "k3" * 12
    with open_server(color_onnx, ServeConfig(port=0, token=token), source=str(colour_video), loop=True,
                     max_fps=20) as served:
        page.goto(served.url + "/")
        assert page.url.endswith("/login")
        page.fill("input[name=token]", "wrong")
        page.click("input[type=submit]")
        assert "Wrong token" in page.content()
        page.fill("input[name=token]", token)
        page.click("input[type=submit]")
        page.wait_for_function("document.querySelector('img.stream') && document.querySelector('img.stream')"
                               ".naturalWidth > 0", timeout=20000)
        assert token not in page.content()
        cookies = page.context.cookies()
        assert all(token not in c["value"] for c in cookies)
