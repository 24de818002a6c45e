"""``edgecnn bench MODEL...`` (measure) and ``edgecnn bench compare REPORT.json...`` (side by side)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from edgecnn.cli import EdgeCommand, EdgeGroup, new_typer
from edgecnn.cli.choices import BackendChoice


class GateMetric(str, Enum):
    p50 = "p50"
    p90 = "p90"
    p99 = "p99"
    mean = "mean"


class CompareMetric(str, Enum):
    p50 = "p50"
    p90 = "p90"
    p99 = "p99"
    mean = "mean"
    fps = "fps"


class BenchGroup(EdgeGroup):
    """``bench`` takes models directly (the ``run`` sub-command is the default) or ``compare``."""

    default_command = "run"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


class BenchRunCommand(EdgeCommand):
    """``bench run``, the default: its usage line says ``edgecnn bench`` (how it is typed), not ``bench run``."""

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        path = ctx.parent.command_path if ctx.parent is not None else ctx.command_path
        formatter.write_usage(path, " ".join(self.collect_usage_pieces(ctx)))


def bench_run(
    models: Annotated[list[Path], typer.Argument(help="Model files (.tflite/.onnx/.keras) and/or run/export folders.",
                                                 show_default=False)],
    threads: Annotated[str | None, typer.Option("--threads", "-t", help="Thread counts to sweep, e.g. 1,2,4 ('auto': runtime default).")] = None,
    batch: Annotated[str | None, typer.Option("--batch", "-b", help="Batch sizes to sweep, e.g. 1,8.")] = None,
    backend: Annotated[BackendChoice | None, typer.Option(help="Runtime (default: by file type).")] = None,
    delegate: Annotated[str | None, typer.Option(help="TFLite external delegate library, e.g. libedgetpu.so.1.")] = None,
    delegate_option: Annotated[list[str] | None, typer.Option("--delegate-option", help="Delegate option KEY=VALUE (repeatable).")] = None,
    providers: Annotated[str | None, typer.Option(help="ONNX Runtime providers in order, e.g. cuda,cpu.")] = None,
    device: Annotated[str | None, typer.Option("--device", "-d", help="Device profile (edgecnn devices list); flags override it.")] = None,
    cpus: Annotated[str | None, typer.Option(help="Pin to these CPUs while measuring, e.g. 0,1 or 2-3 (Linux).")] = None,
    data: Annotated[Path | None, typer.Option(help="Labelled folder: adds accuracy and preprocessing time per image.")] = None,
    max_images: Annotated[int | None, typer.Option(help="Use at most this many images of --data.")] = None,
    runs: Annotated[int, typer.Option(help="Minimum timed runs (0: time-bounded only).")] = 50,
    min_seconds: Annotated[float, typer.Option(help="Minimum duration of the timed loop.")] = 1.0,
    max_seconds: Annotated[float, typer.Option(help="Stop the timed loop after this long, even before --runs.")] = 60.0,
    warmup: Annotated[int, typer.Option(help="Untimed warm-up runs.")] = 5,
    warmup_seconds: Annotated[float, typer.Option(help="Minimum warm-up duration.")] = 0.5,
    include_keras: Annotated[bool, typer.Option(help="Also benchmark model.keras found in folders (imports TensorFlow).")] = False,
    report: Annotated[list[Path] | None, typer.Option("--report", "-r", help="Write FILE.json / .md / .html (repeatable).")] = None,
    label: Annotated[str | None, typer.Option(help="Name of this device in comparisons (default: profile or hostname).")] = None,
    fail_above_ms: Annotated[float | None, typer.Option(help="Exit non-zero when any row's --gate-metric exceeds this (ms).")] = None,
    min_accuracy: Annotated[float | None, typer.Option(help="Exit non-zero when accuracy on --data is below this fraction.")] = None,
    gate_metric: Annotated[GateMetric, typer.Option(help="Latency figure checked by --fail-above-ms.")] = GateMetric.p50,
    pick: Annotated[Path | None, typer.Option("--pick", help="Write FILE.json: a deploy profile of the fastest "
                                              "artifact × threads × batch whose accuracy on --data passes the gate "
                                              "(edgecnn run --profile FILE uses it).")] = None,
    gate_int8_acc_drop: Annotated[float, typer.Option("--gate-int8-acc-drop", help="--pick: max accuracy drop against "
                                                      "the least quantized artifact (0.01 = 1 point), as export's gate.")] = 0.01,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
    unsafe: Annotated[bool, typer.Option("--unsafe", help="Allow .keras models with Lambda layers (only files you "
                                         "trust).")] = False,
    conventions: object = None,
) -> None:
    """Benchmark artifacts: init, first inference, warm-up, then timed loop; p50/p90/p99, FPS, RSS, accuracy.

    Also: `edgecnn bench compare REPORT.json...` merges reports from several devices.
    """
    from edgecnn.api import bench
    from edgecnn.bench.measure import BenchSettings
    from edgecnn.bench.render import print_results
    from edgecnn.bench.runner import enforce_gates
    from edgecnn.config import parse_key_values
    from edgecnn.console import console, set_quiet

    set_quiet(quiet)

    options = dict(
        backend=backend.value if backend else None, threads=threads, batches=batch, delegate=delegate,
        delegate_options=parse_key_values(delegate_option), providers=providers, device=device, cpus=cpus, data=data,
        max_images=max_images, include_keras=include_keras,
        settings=BenchSettings(runs=runs, min_seconds=min_seconds, max_seconds=max_seconds, warmup=warmup,
                               warmup_seconds=warmup_seconds),
        label=label, fail_above_ms=fail_above_ms, min_accuracy=min_accuracy, gate_metric=gate_metric.value,
        unsafe=unsafe, conventions=conventions,
    )
    result = bench(models, reports=report or [], pick=pick, max_drop=gate_int8_acc_drop, **options)
    written, choice, profile_path = result.files, result.pick, result.profile
    print_results(result)
    for path in written:
        console.print(f"Report: {path}")
    if choice is not None:
        r = choice.row
        console.print(f"Picked {r.file} backend={r.backend} threads={'auto' if r.threads is None else r.threads} "
                      f"batch={r.batch}: p50 {choice.per_image_ms:.3f} ms/image, accuracy {r.accuracy:.4f} "
                      f"(reference {choice.reference.file} {choice.reference.accuracy:.4f})", markup=False)
        console.print(f"Deploy profile: {profile_path}  (edgecnn run --profile {profile_path} ...)", markup=False)
    if result.partial:  # stopped by a signal: rows and reports are written; exit 130/143
        raise result.interrupted  # type: ignore[attr-defined]
    enforce_gates(result)


def bench_compare(
    reports: Annotated[list[Path], typer.Argument(help="JSON reports written by `edgecnn bench --report X.json`.",
                                                  show_default=False)],
    metric: Annotated[CompareMetric, typer.Option(help="Figure to compare.")] = CompareMetric.p50,
    report: Annotated[list[Path] | None, typer.Option("--report", "-r", help="Write FILE.json / .md / .html (repeatable).")] = None,
) -> None:
    """Merge bench reports from several devices: rows are artifacts, columns are devices."""
    from edgecnn.bench.api import compare
    from edgecnn.bench.render import print_comparison
    from edgecnn.console import console, warn

    cmp, written = compare(reports, reports=report or [], metric=metric.value)
    for w in cmp.warnings:
        warn(w)
    print_comparison(cmp)
    for path in written:
        console.print(f"Report: {path}")


def register(app: typer.Typer) -> None:
    sub = new_typer(cls=BenchGroup, help="Benchmark artifacts (`edgecnn bench MODEL...`) or compare reports "
                                         "(`edgecnn bench compare REPORT.json...`).")
    from edgecnn.cli.conventions import with_conventions

    sub.command("run", cls=BenchRunCommand, help=bench_run.__doc__)(with_conventions(bench_run))
    sub.command("compare", cls=EdgeCommand)(bench_compare)
    app.add_typer(sub, name="bench")
