"""``edgecnn bundle SOURCE --target TARGET -o FILE``: an offline, self-checking install bundle for a box."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli import EdgeCommand


def bundle_cmd(
    source: Annotated[Path | None, typer.Argument(help="Station file (.toml), deploy profile (.json from bench --pick), "
                                                  "export folder, or artifact (.tflite/.onnx with golden.npz beside it).",
                                                  show_default=False)] = None,
    target: Annotated[str | None, typer.Option("--target", help="Device profile of the box (rpi4, rpi5, x86-cpu, "
                                               "jetson-orin-nano, ...): its platform tags, Python and runtime extra.")] = None,
    output: Annotated[Path | None, typer.Option("--out", "--output", "-o", help="The bundle to write (.tar.gz).")] = None,
    python: Annotated[str | None, typer.Option("--python", help="The box's Python (e.g. 3.10), instead of the "
                                               "profile's.")] = None,
    wheelhouse: Annotated[Path | None, typer.Option("--wheelhouse", help="Take every wheel from this folder, with no "
                                                    "network (default: the package registry pip is set up for).")] = None,
    sign: Annotated[Path | None, typer.Option("--sign", help="Sign the manifest with this Ed25519 private key; the box "
                                              "checks it with install --trust KEY.pub.")] = None,
    new_key: Annotated[Path | None, typer.Option("--new-key", help="Write a new signing key here (mode 0600) and its "
                                                 "public key beside it (.pub), then stop.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
) -> None:
    """Bundle a model for a box with no network: wheels, model, golden set, unit and a self-checking installer."""
    from edgecnn.console import console, warn
    from edgecnn.errors import ConfigError
    from edgecnn.fileio import human_size

    if new_key is not None:
        from edgecnn.deploy.keys import new_key as make_key

        key, pub = make_key(new_key)
        console.print(f"Wrote {key} (private, mode 0600; keep it off the boxes) and {pub} (give it to install --trust).",
                      markup=False)
        return
    if source is None or target is None or output is None:
        raise ConfigError("Expected SOURCE, --target TARGET and -o FILE.tar.gz (or --new-key KEY); received "
                          f"{'SOURCE' if source is None else ''} {'no --target' if target is None else ''} "
                          f"{'no -o' if output is None else ''}".strip() + ".")
    from edgecnn.deploy.bundle import build_bundle

    res = build_bundle(source, target, output, python=python, wheelhouse=wheelhouse, sign=sign, force=force)
    for note in res.notes:
        warn(note)
    m = res.manifest
    console.print(f"Wrote {res.path} ({human_size(res.size_bytes)}, {res.wheels} wheels for {m['target']['platforms'][0]} "
                  f"CPython {m['target']['python']}, {m['requirement']}{', signed' if sign else ''}) in "
                  f"{res.seconds:.1f} s", markup=False)
    if m["unpinned"]:
        console.print(f"  not at constraints.txt's pins (no wheel for the target): {', '.join(m['unpinned'])}", markup=False)
    console.print(f"  on the box: tar xzf {res.path.name} && sudo sh edgecnn-{res.id}/install --prefix /opt/edgecnn"
                  f"{' --trust KEY.pub' if sign else ''}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("bundle", cls=EdgeCommand)(bundle_cmd)
