"""Throughput of ``edgecnn run --engine ray`` at 1 and 2 workers, and the overhead of one Ray worker vs a local run.

Same folder, same int8 TFLite model (64x64 input, 96x96 PNGs), same 1 thread per worker, interleaved rounds
(ARCHITECTURE.md, "How performance is measured here"). A REAL two-node Ray cluster runs on 127.0.0.1 (head +
second node, 1 CPU each, :class:`edgecnn.scale.localcluster.LocalCluster`); the driver (this process) joins it.

* local:    ``edgecnn.runtime.runner.run`` with ``--threads 1 --workers 1`` (one CPU's worth, no Ray);
* ray x1:   ``predict_files`` on the cluster with ``--workers 1`` (one actor, 1 CPU);
* ray x2:   ``--workers 2`` (one actor per node).

Job times exclude ``ray.init`` (once per command) but include actor start-up (worker process, imports, model
load), as a user sees them; "while busy" is images / the time actors spent classifying (the per-node rate).
The driver's own cost per row (decode the Ray batch, dedupe/order, write the CSV row) is timed separately: it
caps any cluster at ``1 / driver_cost`` rows/s. The printout predicts 8 and 64 nodes from these figures.

On a 2-core machine the two "nodes" share the cores with the driver: x2 cannot reach 2x here. Noisy machine:
read the ratios, and the raw figures under benchmarks/results/ray_scale.json.

Usage: python benchmarks/ray_scale.py [--images 2000] [--rounds 3] [--batch 16]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_model(work: Path) -> Path:
    """The int8 model of run_throughput.py, built in a child process (TensorFlow stays out of this one)."""
    code = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/benchmarks']; from pathlib import Path; "
            "import run_throughput; print(run_throughput.make_model(Path(sys.argv[2])))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT), str(work)], capture_output=True, text=True,
                         check=True, timeout=900)
    return Path(out.stdout.strip().splitlines()[-1])


def local_run(model: Path, folder: Path, batch: int) -> float:
    from edgecnn.runtime.runner import RunOptions, run

    s = run(RunOptions(model=model, source=str(folder), threads=1, workers=1, batch=batch, print_results=False))
    return s.count / s.elapsed_s


def ray_run(model: Path, files: list[str], address: str, workers: int, batch: int) -> tuple[float, float, dict]:
    """(images/s over the whole job, images/s of one worker while busy, report) on the joined cluster."""
    from edgecnn.scale.infer import JobReport, ScaleOptions, predict_files

    report = JobReport()
    t0 = time.perf_counter()
    n = sum(1 for _ in predict_files(files, model, ScaleOptions(address=address, workers=workers, threads=1,
                                                                 batch=batch, progress=False), report=report))
    end = time.perf_counter()
    return n / (end - t0), report.images_per_busy_second(), {
        "rows_by_node": report.rows_by_node, "busy_s_by_worker": report.busy_s_by_worker,
        "first_row_s": report.first_row_s, "job_s": end - t0, "retried": report.retried}


def driver_cost(files: list[str], rows: int = 20000) -> float:
    """Seconds of driver work per row: decoding Ray's columns, ordering, writing the CSV row."""
    import numpy as np

    from edgecnn.runtime.pipeline import Result
    from edgecnn.runtime.sinks import RowWriter
    from edgecnn.scale.infer import InOrder, decode_rows, encode_results

    batch = [Result(source=files[i % len(files)], index=i, label="circle", score=0.9,
                    topk=[("circle", 0.9), ("square", 0.07), ("stripes", 0.03)], class_index=0)
             for i in range(256)]
    cols = encode_results(batch, np.arange(256), "node:1", 0)
    with tempfile.TemporaryDirectory() as tmp:
        writer = RowWriter(Path(tmp) / "rows.csv", "csv")
        order = InOrder(rows)
        t0 = time.perf_counter()
        done = 0
        while done < rows:
            cols["index"] = np.arange(done, min(done + 256, rows))
            part = {k: v[: len(cols["index"])] for k, v in cols.items()}
            for r, _w in decode_rows(part):
                for ready in order.add(r):
                    writer.write(ready)
            done += len(part["index"])
        writer.close()
        return (time.perf_counter() - t0) / rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()

    from edgecnn.imaging import list_images
    from edgecnn.scale.cluster import ray_session
    from edgecnn.scale.localcluster import LocalCluster
    from edgecnn.synthetic import write_dataset

    work = Path(tempfile.mkdtemp(prefix="edgecnn-raybench-"))
    model = make_model(work)
    per = -(-args.images // 3)
    folder = write_dataset(work / "images", classes=["circle", "square", "stripes"], per_class=per, size=96)
    files = [str(f) for f in list_images(folder)]
    load = os.getloadavg()[0]
    print(f"{len(files)} images, model {model.name}, batch {args.batch}, {args.rounds} rounds; load {load:.1f} "
          f"on {os.cpu_count()} cores")
    figures: dict[str, list[float]] = {"local": [], "ray1": [], "ray2": [], "ray1_worker": [], "ray2_worker": []}
    nodes_seen: list[dict] = []
    with LocalCluster(nodes=2, cpus_per_node=1, object_store_mb=100) as cluster:
        os.environ.update(cluster.driver_env)
        with ray_session(cluster.address):
            for r in range(args.rounds):
                order = ("local", "ray1", "ray2") if r % 2 == 0 else ("ray2", "ray1", "local")
                for what in order:
                    if what == "local":
                        figures["local"].append(local_run(model, folder, args.batch))
                    else:
                        k = int(what[-1])
                        total, busy, rep = ray_run(model, files, cluster.address, k, args.batch)
                        figures[what].append(total)
                        figures[f"{what}_worker"].append(busy)
                        nodes_seen.append({"workers": k, **rep})
                print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}/s" for k, v in figures.items()), flush=True)
    cost = driver_cost(files)
    med = {k: statistics.median(v) for k, v in figures.items()}
    per_node = med["ray1_worker"]  # one worker (1 CPU) while busy: start-up excluded
    startup = statistics.median([j["first_row_s"] for j in nodes_seen])
    driver_max = 1.0 / cost
    predict = {}
    for n in (8, 64):
        ideal = per_node * n
        predict[n] = {"per_node_x_nodes": ideal, "with_driver_cap": min(ideal, driver_max),
                      "job_of_1M_images_s": startup + 1e6 / min(ideal, driver_max)}
    result = {
        "images": len(files), "batch": args.batch, "rounds": args.rounds, "load_avg": load, "cores": os.cpu_count(),
        "images_per_s": figures, "median": med, "driver_s_per_row": cost, "driver_max_rows_per_s": driver_max,
        "first_row_s_median": startup,
        "ratio_local_over_ray1_job": med["local"] / med["ray1"],
        "ratio_local_over_ray1_worker": med["local"] / med["ray1_worker"],
        "ratio_ray2_over_ray1_job": med["ray2"] / med["ray1"],
        "predicted_images_per_s": predict, "jobs": nodes_seen,
    }
    print(f"local run (1 thread)      {med['local']:8.1f} images/s (whole run)")
    print(f"ray, 1 worker x 1 CPU     {med['ray1']:8.1f} images/s (whole job), {med['ray1_worker']:8.1f} while busy")
    print(f"ray, 2 workers x 1 CPU    {med['ray2']:8.1f} images/s (whole job), {med['ray2_worker']:8.1f} per worker busy")
    print(f"overhead of one Ray worker vs a local run: {result['ratio_local_over_ray1_worker']:.2f}x while busy, "
          f"{result['ratio_local_over_ray1_job']:.2f}x over the whole job (actor start-up {startup:.1f}s to the first row)")
    print(f"1 -> 2 workers (whole job): {result['ratio_ray2_over_ray1_job']:.2f}x (the 2 nodes share 2 cores with "
          f"the driver here)")
    print(f"driver: {cost * 1e6:.1f} us per row -> at most {driver_max:,.0f} rows/s whatever the cluster size")
    for n, p in predict.items():
        print(f"predicted {n:>2} nodes x 1 CPU: {p['per_node_x_nodes']:,.0f} images/s (per-node x nodes), "
              f"{p['with_driver_cap']:,.0f} with the driver's cap; 1M images in {p['job_of_1M_images_s']:,.0f}s")
    out = ROOT / "benchmarks" / "results" / "ray_scale.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
