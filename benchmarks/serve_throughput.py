"""``edgecnn serve``: /predict throughput under concurrent clients, and the station's frame rate with MJPEG viewers.

Same run, interleaved rounds, ratios against baselines measured here (ARCHITECTURE.md, "How performance is measured
here"). The model is a real ONNX CNN with a dynamic batch dimension (3 conv layers at 64x64 and a 2048-wide dense
head, random weights, written with onnx.helper: no TensorFlow), run by ONNX Runtime with 1 intra-op thread in
every server (one call of batch 1: ~13 ms here; of batch 16: ~45 ms). Each server is its own process (``edgecnn serve`` as a user starts it); the clients are threads of
this process with keep-alive connections, POSTing a 64x64 PNG.

1. /predict: ``edgecnn serve --max-batch 16`` (dynamic batching) against a bare script that runs the same runtime
   (``edgecnn.load(...).predict(bytes)`` per request, no batching) behind the same HTTP stack (Starlette +
   uvicorn), at 1, 4 and 16 concurrent clients: requests/s, ratio, p50/p99 latency. Targets: >= 1.5x at 16
   clients, >= 0.9x at 1.
2. The HTTP stack: the bare script on Starlette + uvicorn against the same script on the standard library's
   ``ThreadingHTTPServer`` (the alternative considered), at 1 and 16 clients.
3. Live view: ``edgecnn serve MODEL --source synthetic:1000:320x240`` (a station-like source as fast as the model
   goes; the station engine's own loop once it is on main); frames/s over windows with none and with 3 browser-like
   MJPEG viewers (each reads the stream
   as a remote browser does; ``--decode`` also decodes each JPEG here, as a browser on the box would). Target >= 0.95x.

Usage: python benchmarks/serve_throughput.py [--seconds 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "serve"))


# ---------------------------------------------------------------------------------------------- bare servers
def bare_starlette(model: str, port: int) -> None:
    """The baseline: the same runtime behind the same HTTP stack, one inference call per request."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    import edgecnn

    clf = edgecnn.load(model, threads=1)

    async def predict(request):
        body = await request.body()
        p = await run_in_threadpool(clf.predict, body)
        return JSONResponse(p.to_dict())

    app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def bare_stdlib(model: str, port: int) -> None:
    """The alternative stack: the same handler on http.server.ThreadingHTTPServer."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import edgecnn

    clf = edgecnn.load(model, threads=1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            data = json.dumps(clf.predict(body).to_dict()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


# ---------------------------------------------------------------------------------------------- helpers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on {port} did not start")


def start(kind: str, model: Path, extra: list[str] | None = None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if kind == "edgecnn":
        threads = [] if model.suffix == ".toml" else ["--threads", "1"]  # a station file sets its own
        cmd = [sys.executable, "-m", "edgecnn", "serve", str(model), "--port", str(port), *threads, *(extra or [])]
    else:
        cmd = [sys.executable, __file__, f"--bare-{kind}", str(model), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_listening(port, proc)
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load(port: int, clients: int, seconds: float, body: bytes) -> tuple[float, list[float], int]:
    """(requests/s, latencies in ms, errors) of ``clients`` keep-alive clients POSTing ``body`` for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start_at = time.perf_counter() + 0.2
    end_at = start_at + seconds

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "image/png"}
        while time.perf_counter() < start_at:
            time.sleep(0.001)
        while True:
            t0 = time.perf_counter()
            if t0 >= end_at:
                break
            try:
                conn.request("POST", "/predict", body, headers)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    errors[i] += 1
                    continue
            except OSError:
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            latencies[i].append((time.perf_counter() - t0) * 1000.0)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [x for per in latencies for x in per]
    return len(flat) / seconds, flat, sum(errors)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def png(size: int = 64) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- parts
def predict_part(model: Path, seconds: float, rounds: int, loads: list[int]) -> dict:
    body = png()
    results: dict[tuple[str, int], list] = {}
    for r in range(rounds):
        order = ("edgecnn", "starlette") if r % 2 == 0 else ("starlette", "edgecnn")
        for kind in order:
            proc, port = start(kind, model, ["--max-batch", "16"] if kind == "edgecnn" else None)
            try:
                load(port, 2, 1.0, body)  # warm-up
                for n in loads:
                    rps, lat, err = load(port, n, seconds, body)
                    results.setdefault((kind, n), []).append((rps, lat, err))
            finally:
                stop(proc)
    print("\n1. POST /predict: edgecnn serve (dynamic batching, --max-batch 16) vs the bare Starlette script "
          "(same runtime, no batching)")
    print(f"{'clients':>7} | {'edgecnn req/s':>13} {'p50 ms':>7} {'p99 ms':>7} | {'bare req/s':>10} {'p50 ms':>7} "
          f"{'p99 ms':>7} | ratio | errors")
    out = {}
    for n in loads:
        e = results[("edgecnn", n)]
        b = results[("starlette", n)]
        e_rps = statistics.median(x[0] for x in e)
        b_rps = statistics.median(x[0] for x in b)
        e_lat = [v for x in e for v in x[1]]
        b_lat = [v for x in b for v in x[1]]
        ratio = e_rps / b_rps if b_rps else float("nan")
        errs = sum(x[2] for x in e) + sum(x[2] for x in b)
        print(f"{n:>7} | {e_rps:>13.1f} {pct(e_lat, 50):>7.1f} {pct(e_lat, 99):>7.1f} | {b_rps:>10.1f} "
              f"{pct(b_lat, 50):>7.1f} {pct(b_lat, 99):>7.1f} | {ratio:5.2f} | {errs}")
        out[n] = {"edgecnn_rps": e_rps, "bare_rps": b_rps, "ratio": ratio, "edgecnn_p99_ms": pct(e_lat, 99),
                  "bare_p99_ms": pct(b_lat, 99), "edgecnn_p50_ms": pct(e_lat, 50), "bare_p50_ms": pct(b_lat, 50)}
    verdict16 = "MET" if out[max(loads)]["ratio"] >= 1.5 else "NOT MET"
    verdict1 = "MET" if out[min(loads)]["ratio"] >= 0.9 else "NOT MET"
    print(f"   target >= 1.5x at {max(loads)} clients: {verdict16}; >= 0.9x at {min(loads)} client: {verdict1}")
    return out


def stack_part(model: Path, seconds: float, rounds: int) -> dict:
    body = png()
    results: dict[tuple[str, int], list[float]] = {}
    for r in range(rounds):
        order = ("starlette", "stdlib") if r % 2 == 0 else ("stdlib", "starlette")
        for kind in order:
            proc, port = start(kind, model)
            try:
                load(port, 2, 1.0, body)
                for n in (1, 16):
                    rps, lat, _ = load(port, n, seconds, body)
                    results.setdefault((kind, n), []).append((rps, pct(lat, 99)))
            finally:
                stop(proc)
    print("\n2. HTTP stack, same bare handler: Starlette + uvicorn vs http.server.ThreadingHTTPServer")
    out = {}
    for n in (1, 16):
        s = statistics.median(x[0] for x in results[("starlette", n)])
        t = statistics.median(x[0] for x in results[("stdlib", n)])
        s99 = statistics.median(x[1] for x in results[("starlette", n)])
        t99 = statistics.median(x[1] for x in results[("stdlib", n)])
        print(f"   {n:>2} clients: starlette {s:7.1f} req/s (p99 {s99:6.1f} ms), stdlib {t:7.1f} req/s "
              f"(p99 {t99:6.1f} ms): ratio {s / t:4.2f}")
        out[n] = {"starlette_rps": s, "stdlib_rps": t, "ratio": s / t}
    return out


def frames_of(port: int, name: str | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/api/status")
    doc = json.loads(conn.getresponse().read())
    conn.close()
    src = doc["sources"][0] if doc["sources"] else None
    return (src["health"]["frames"] if src and "health" in src else 0), (src["name"] if src else "")


def viewer(port: int, name: str, stop_at: threading.Event, counts: list[int], decode: bool) -> None:
    """A browser-like MJPEG client: reads every part as it comes (``decode``: and decodes the JPEG here, as if the
    browser ran on the box itself)."""
    import urllib.parse

    import cv2
    import numpy as np

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/stream/" + urllib.parse.quote(name))
    r = conn.getresponse()
    while not stop_at.is_set():
        line = r.fp.readline()
        if not line:
            break
        if not line.startswith(b"--"):
            continue
        length = 0
        while (h := r.fp.readline().strip()):
            if h.lower().startswith(b"content-length:"):
                length = int(h.split(b":")[1])
        jpeg = r.fp.read(length)
        if decode:
            cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        counts[0] += 1
    conn.close()


def live_target(model: Path) -> tuple[Path, list[str], str]:
    """What serves the live view: the station engine on a one-source station file when this build has it, else
    ``edgecnn serve MODEL --source`` (a Pipeline feeding the same observer)."""
    import importlib.util

    if importlib.util.find_spec("edgecnn.station.engine") is None:
        return model, ["--source", "synthetic:1000:320x240"], "edgecnn serve MODEL --source (Pipeline + LiveView)"
    station = model.with_name("station.toml")
    station.write_text(f'name = "bench"\nmodel = "{model}"\n\n[run]\nthreads = 1\n\n[[sources]]\nname = "cam"\n'
                       f'source = "synthetic:1000:320x240"\n\n[rules]\nthreshold = 0.5\n')
    return station, [], "edgecnn serve STATION.toml (the station engine + LiveView)"


def live_part(model: Path, seconds: float, rounds: int, decode: bool) -> dict:
    target, extra, what = live_target(model)
    proc, port = start("edgecnn", target, extra)
    try:
        deadline = time.monotonic() + 30
        while not frames_of(port)[0]:
            if time.monotonic() > deadline:
                raise SystemExit("the source delivered no frame")
            time.sleep(0.2)
        name = frames_of(port)[1]
        time.sleep(2.0)
        fps = {"none": [], "3 viewers": []}
        shown = []
        for r in range(rounds * 4):  # short alternating windows: the shared machine's load drifts between them
            mode = ("none", "3 viewers")[(r + (r // 2)) % 2]  # none, 3, 3, none, ...
            stop_at = threading.Event()
            counts = [0]
            threads = []
            if mode != "none":
                threads = [threading.Thread(target=viewer, args=(port, name, stop_at, counts, decode)) for _ in range(3)]
                for t in threads:
                    t.start()
                time.sleep(1.0)
            f0, t0 = frames_of(port)[0], time.perf_counter()
            time.sleep(seconds)
            f1, t1 = frames_of(port)[0], time.perf_counter()
            stop_at.set()
            for t in threads:
                t.join(10)
            fps[mode].append((f1 - f0) / (t1 - t0))
            if mode != "none":
                shown.append(counts[0] / (seconds + 1.0) / 3)
    finally:
        stop(proc)
    none, three = statistics.median(fps["none"]), statistics.median(fps["3 viewers"])
    ratio = three / none if none else float("nan")
    where = "decoded here, as if the browsers ran on the box" if decode else "read as they come; browsers decode elsewhere"
    print(f"\n3. Live view: source frames/s (synthetic:1000:320x240, as fast as the model goes) under {what}; "
          f"viewers {where}")
    print(f"   no viewer {none:7.1f} fps, 3 MJPEG viewers {three:7.1f} fps (each shown {statistics.median(shown):.1f} "
          f"JPEG/s): ratio {ratio:4.2f}  target >= 0.95: {'MET' if ratio >= 0.95 else 'NOT MET'}")
    print(f"   rounds: none {[round(x, 1) for x in fps['none']]}, 3 viewers {[round(x, 1) for x in fps['3 viewers']]}")
    return {"none_fps": none, "viewers_fps": three, "ratio": ratio}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--loads", default="1,4,16")
    ap.add_argument("--port", type=int)
    ap.add_argument("--bare-starlette")
    ap.add_argument("--bare-stdlib")
    ap.add_argument("--only", choices=["predict", "stack", "live"])
    ap.add_argument("--decode", action="store_true", help="viewers decode every JPEG in this process too")
    a = ap.parse_args()
    if a.bare_starlette:
        return bare_starlette(a.bare_starlette, a.port)
    if a.bare_stdlib:
        return bare_stdlib(a.bare_stdlib, a.port)
    from onnxmodels import conv_model

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as tmp:
        model = conv_model(Path(tmp) / "conv.onnx", size=64, widths=(32, 64, 128), hidden=2048)
        out = {}
        if a.only in (None, "predict"):
            out["predict"] = predict_part(model, a.seconds, a.rounds, [int(x) for x in a.loads.split(",")])
        if a.only in (None, "stack"):
            out["stack"] = stack_part(model, a.seconds, a.rounds)
        if a.only in (None, "live"):
            out["live"] = live_part(model, a.seconds, a.rounds, a.decode)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 shared cores: noisy figures)")
    print("JSON " + json.dumps(out, default=float))


if __name__ == "__main__":
    main()
