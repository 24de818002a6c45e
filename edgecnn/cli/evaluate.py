"""``edgecnn evaluate MODEL --data DIR``: accuracy, top-k, per-class figures and a confusion-matrix PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli import EdgeCommand
from edgecnn.cli.choices import BackendChoice, EngineChoice


def evaluate_command(
    model: Annotated[Path, typer.Argument(help="Model file (.tflite, .onnx, .keras) or a run folder.")],
    data: Annotated[Path | None, typer.Option(help="Labelled folder: one sub-folder per class.")] = None,
    run: Annotated[Path | None, typer.Option(help="Evaluate on this training run's split instead of --data.")] = None,
    split: Annotated[str, typer.Option(help="Split of --run: test, val or train.")] = "test",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for metrics.json and confusion_matrix.png "
                                             "(default: the next free runs/evaluate/exp, exp2, ...).")] = None,
    backend: Annotated[BackendChoice, typer.Option(help="Runtime (auto: by file type).")] = BackendChoice.auto,
    threads: Annotated[int | None, typer.Option(min=1, help="Interpreter / intra-op threads.")] = None,
    providers: Annotated[str | None, typer.Option(help="ONNX Runtime providers, comma-separated.")] = None,
    batch: Annotated[int, typer.Option(min=1, help="Images per inference call.")] = 32,
    topk: Annotated[int, typer.Option("--top-k", min=1, help="k of the top-k accuracy.")] = 5,
    engine: Annotated[EngineChoice, typer.Option(help="local: this machine; ray: a Ray cluster (.tflite/.onnx "
                                                 "models).")] = EngineChoice.local,
    address: Annotated[str | None, typer.Option(help="--engine ray: HOST:PORT of a running Ray head "
                                                "(default: start a local Ray for this command).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="--engine ray: Ray workers (default: one per node).")] = None,
    max_pixels: Annotated[int | None, typer.Option("--max-pixels", min=1, envvar="EDGECNN_MAX_PIXELS",
                                                   help="Largest image decoded (width x height, checked in the header "
                                                        "before decoding; larger ones are skipped). Default "
                                                        "64000000.")] = None,
    parent: Annotated[str | None, typer.Option(help="Also evaluate this parent model on the same data and print "
                                               "parent vs child in one table ('auto': the run the model's card "
                                               "names, from `train --from`).")] = None,
    conventions: object = None,
) -> None:
    """Measure a model on labelled images through the same pipeline as `edgecnn run`."""
    from edgecnn.api import evaluate
    from edgecnn.cli import verbose
    from edgecnn.console import console, printable
    from edgecnn.evaluate import PER_CLASS_TERMINAL, per_class_rows
    from edgecnn.scale.cluster import check_address
    from edgecnn.scale.infer import ScaleOptions
    from edgecnn.tables import print_fitted

    check_address(engine.value, address, workers)
    if parent is not None:
        from edgecnn.evaluate import compare

        c = compare(model, parent, data, out_dir=out, backend=backend.value, threads=threads, batch=batch, topk=topk,
                    providers=[p.strip() for p in providers.split(",")] if providers else None, max_pixels=max_pixels)
        console.print(f"{printable(c.data)}: {c.child.count} images", markup=False)
        width = max(len(printable(f)) for f, _p, _c in c.rows()) + 2
        console.print(f"{'':<{width}}{'parent':>10}{'child':>10}{'change':>10}", markup=False)
        for fig, p, ch in c.rows():
            cells = [f"{v:>10.4f}" if v is not None else f"{'-':>10}" for v in (p, ch)]
            delta = f"{ch - p:>+10.4f}" if p is not None and ch is not None else f"{'-':>10}"
            console.print(f"{printable(fig):<{width}}{cells[0]}{cells[1]}{delta}", markup=False)
        console.print(f"parent: {printable(c.parent.model)}", markup=False)
        console.print(f"child:  {printable(c.child.model)}", markup=False)
        console.print("Saved " + ", ".join(printable(o) for o in c.outputs[:1]), markup=False)
        return
    r = evaluate(model, data=data, run=run, split=split, out_dir=out, backend=backend.value, threads=threads,
                 providers=[p.strip() for p in providers.split(",")] if providers else None, batch=batch, topk=topk,
                 engine=engine.value, scale=ScaleOptions(address=address, workers=workers, verbose=verbose()),
                 max_pixels=max_pixels, conventions=conventions)
    console.print(f"{printable(r.model)} on {printable(r.data)}: {r.count} images", markup=False)
    console.print(f"accuracy {r.accuracy:.4f}  top-{r.topk} {r.topk_accuracy:.4f}  macro-F1 {r.macro_f1:.4f}",
                  markup=False)
    print_fitted(PER_CLASS_TERMINAL, per_class_rows(r.per_class))
    for src, err in r.skipped[:10]:
        console.print(f"skipped {printable(src)}: {printable(err)}", markup=False)
    console.print("Saved " + ", ".join(r.outputs), markup=False)


def register(app: typer.Typer) -> None:
    from edgecnn.cli.conventions import with_conventions

    app.command("evaluate", cls=EdgeCommand)(with_conventions(evaluate_command))
