"""Real streams on 127.0.0.1 for station tests and benchmarks: MJPEG over HTTP from a small server thread (a
stream may stall: it keeps the connection open and stops sending), and MJPG video files written with OpenCV."""

from __future__ import annotations

import http.server
import socketserver
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from edgecnn.synthetic import PATTERNS, pattern_image


def frames(width: int = 96, height: int = 64, count: int = 8, seed: int = 0) -> list[np.ndarray]:
    """``count`` BGR frames: left and right halves show different synthetic patterns."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        left = pattern_image(PATTERNS[i % 3], height, rng)[:, : width // 2]
        right = pattern_image(PATTERNS[(i + 1) % 3], height, rng)[:, : width - width // 2]
        out.append(np.ascontiguousarray(np.concatenate([left, right], axis=1)[:, :, ::-1]))
    return out


class MJPEGServer:
    """``http://127.0.0.1:PORT/NAME.mjpg`` serves ``multipart/x-mixed-replace`` JPEG frames at ``fps``.

    ``stall()`` makes every open stream stop sending (the connection stays open: a hung camera); ``resume()``
    lets them go on.
    """

    def __init__(self, fps: float = 10.0, width: int = 96, height: int = 64, seed: int = 0, port: int = 0) -> None:
        self.fps = fps
        self._jpegs = [cv2.imencode(".jpg", f)[1].tobytes() for f in frames(width, height, seed=seed)]
        self._running = threading.Event()
        self._running.set()
        self._closed = threading.Event()
        self.sent = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                next_t = time.perf_counter()
                try:
                    while not server._closed.is_set():
                        if not server._running.is_set():
                            server._closed.wait(0.05)
                            continue
                        jpg = server._jpegs[i % len(server._jpegs)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpg) + jpg + b"\r\n")
                        self.wfile.flush()
                        server.sent += 1
                        i += 1
                        next_t += 1.0 / server.fps
                        server._closed.wait(max(0.0, next_t - time.perf_counter()))
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._httpd = Server(("127.0.0.1", port), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, name: str = "stream") -> str:
        return f"http://127.0.0.1:{self.port}/{name}.mjpg"

    def stall(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def close(self) -> None:
        self._closed.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> MJPEGServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_video(path: Path, count: int = 30, fps: float = 10.0, width: int = 96, height: int = 64) -> Path:
    """An MJPG .avi of ``count`` frames (the halves show different patterns), written with cv2.VideoWriter."""
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert vw.isOpened()
    pictures = frames(width, height, seed=3)
    for i in range(count):
        vw.write(pictures[i % len(pictures)])
    vw.release()
    return path
