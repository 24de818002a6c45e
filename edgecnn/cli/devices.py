"""``edgecnn devices list|show NAME|service``: board profiles and the systemd unit for running on boot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli import new_typer

devices_app = new_typer(help="Device profiles (rpi4, rpi5, jetson-orin-nano, coral-devboard, x86-cpu, gpu-server).")


@devices_app.command("list")
def list_command() -> None:
    """List the device profiles."""
    from edgecnn.console import console
    from edgecnn.devices import list_profiles, load_profile

    for name in list_profiles():
        p = load_profile(name)
        extra = f"edgecnn[{p.install_extra}]" if p.install_extra else ""
        console.print(f"{p.name:<18} {p.backend:<7} {p.precision:<8} {extra:<22} {p.description}", markup=False)


@devices_app.command("show")
def show_command(name: Annotated[str, typer.Argument(help="Profile name, e.g. rpi4.")]) -> None:
    """Show one profile: runtime settings, camera settings and install notes."""
    from edgecnn.console import console
    from edgecnn.devices import load_profile

    p = load_profile(name)
    rows = [("description", p.description), ("backend", p.backend), ("precision", p.precision),
            ("threads", p.threads), ("batch", p.batch), ("delegate", p.delegate),
            ("delegate options", p.delegate_options or None), ("providers", ", ".join(p.providers) or None),
            ("source", p.source),
            ("camera", f"{p.camera_width}x{p.camera_height} @ {p.camera_fps:g} fps" if p.camera_width else None),
            ("install", f"pip install 'edgecnn[{p.install_extra}]'" if p.install_extra else None), ("file", p.path)]
    console.print(p.name, markup=False)
    for key, value in rows:
        if value not in (None, ""):
            console.print(f"  {key:<17} {value}", markup=False)
    if p.install_notes.strip():
        console.print("  notes:", markup=False)
        for line in p.install_notes.strip().splitlines():
            console.print(f"    {line}", markup=False)


@devices_app.command("service")
def service_command(
    model: Annotated[Path | None, typer.Argument(help="Model file the service runs (optional with --profile).")] = None,
    device: Annotated[str | None, typer.Option("--device", "-d", help="Device profile to apply.")] = None,
    source: Annotated[str | None, typer.Option(help="Source (default: the profile's, else --camera). A stream URL "
                                               "with a password goes to the environment file, not the unit.")] = None,
    camera: Annotated[int | None, typer.Option(min=0, help="Camera index (default 0).")] = None,
    user: Annotated[str | None, typer.Option(help="Account running the service (default: the dedicated system "
                                             "account 'edgecnn'; create it once with useradd --system; root only "
                                             "when named).")] = None,
    output: Annotated[Path | None, typer.Option("--out", "--output", "-o", help="Write the unit here instead of stdout.")] = None,
    env_file: Annotated[str | None, typer.Option("--env-file", help="Where the installed unit reads its secrets "
                                                 "(default /etc/edgecnn/<model>.env).")] = None,
    run_args: Annotated[str | None, typer.Option("--args", help="More `edgecnn run` arguments, quoted as one "
                                                 "string, checked like `edgecnn run` checks them, e.g. "
                                                 "\"--save-jsonl /var/log/edgecnn.jsonl\" (rows are appended, so a "
                                                 "restart keeps the log).")] = None,
    profile: Annotated[Path | None, typer.Option("--profile", help="Deploy profile from `edgecnn bench --pick`: the "
                                                 "unit runs its artifact with its backend, threads and batch.")] = None,
    secret_param: Annotated[list[str] | None, typer.Option("--secret-param", help="Also treat this URL parameter as a "
                                                           "secret (repeatable): masked, and a source holding it goes "
                                                           "to the 0600 environment file.")] = None,
    station: Annotated[Path | None, typer.Option("--station", help="A station file: the unit runs `edgecnn station "
                                                 "run FILE` (its model, device, rows and state folder).")] = None,
) -> None:
    """Fill in devices/edgecnn.service: run MODEL on a camera at boot, restarting on failure."""
    from edgecnn.console import console, info
    from edgecnn.devices import write_service

    if station is not None:
        from edgecnn.errors import ConfigError
        from edgecnn.station.service import write_station_service

        given = [name for name, value in (("MODEL", model), ("--device", device), ("--source", source),
                                          ("--camera", camera), ("--args", run_args), ("--profile", profile)) if value]
        if given:
            raise ConfigError(f"Expected the station file to say {', '.join(given)}; received them as options too "
                              "(drop them, or drop --station).")
        unit, written = write_station_service(station, output, user=user, environment_file=env_file)
        if output is None:
            console.print(unit.text, markup=False, highlight=False, end="")
        else:
            info(f"Wrote {written[0]}; install: sudo cp {written[0]} /etc/systemd/system/ && sudo systemctl "
                 f"daemon-reload && sudo systemctl enable --now {written[0].name}")
        return
    unit, written = write_service(model, output=output, device=device, source=source, camera=camera, user=user,
                                  extra_args=run_args, environment_file=env_file, deploy_profile=profile,
                                  secret_params=secret_param or None)
    if output is None:
        console.print(unit.text, markup=False, highlight=False, end="")
        return
    import shlex

    unit_path = written[0]
    q = shlex.quote
    steps = [f"sudo cp {q(str(unit_path))} /etc/systemd/system/"]
    if unit.environment:
        steps.insert(0, f"sudo install -D -m 600 -o root {q(str(written[1]))} {q(str(unit.environment_file))}")
    steps += ["sudo systemctl daemon-reload", f"sudo systemctl enable --now {q(unit_path.name)}"]
    info(f"Wrote {', '.join(str(p) for p in written)}; install: " + " && ".join(steps))


def register(app: typer.Typer) -> None:
    app.add_typer(devices_app, name="devices")
