"""``edgecnn devices service --station FILE``: the systemd unit that runs a station at boot.

The unit is the one :func:`edgecnn.devices.render_service` writes (its sandbox, account, device policy and checks),
running ``edgecnn station run FILE`` instead of ``edgecnn run``: the station file's model, device profile and row
files give the unit's paths, its state folder is writable, and when the file reads secrets from placeholders the
unit reads them from an ``EnvironmentFile=`` whose variables are listed, never their values (they are not known
here and never written by edgecnn).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from edgecnn.errors import ConfigError


class _AnyValue(Mapping[str, str]):
    """An environment in which every placeholder is set: the unit writer checks the file's structure, not secrets
    that only the box has."""

    def __getitem__(self, key: str) -> str:
        return "set-at-boot"

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def render_station_service(station: str | os.PathLike[str], *, user: str | None = None,
                           workdir: str | os.PathLike[str] | None = None, executable: str | None = None,
                           environment_file: str | os.PathLike[str] | None = None,
                           state_dir: str | os.PathLike[str] | None = None) -> Any:
    """The unit (:class:`edgecnn.devices.ServiceUnit`) that runs ``edgecnn station run STATION`` at boot.

    ``state_dir`` (absolute) replaces the file's state folder: the unit runs ``station run --state-dir DIR`` and may
    write there (an installed bundle's ``PREFIX/state``, kept across releases so the sequence number survives updates).

    Raises:
        StationFileError: the station file's problems (placeholders are taken as set).
        ConfigError: what the unit writer refuses (paths, user, control characters).
    """
    import sys

    from edgecnn.devices import _no_control, render_service, systemd_command_line, systemd_path
    from edgecnn.station.schema import load_station

    path = Path(station).expanduser().resolve()
    _no_control("--station", str(path))
    st = load_station(path, _AnyValue())
    extra: list[str] = []
    for key, flag in (("save_csv", "--save-csv"), ("save_jsonl", "--save-jsonl"), ("save_parquet", "--save-parquet")):
        if st.run.get(key):
            extra += [flag, str(st.run[key])]
    state = st.state_dir
    if state_dir is not None:
        _no_control("--state-dir", str(state_dir))
        if not os.path.isabs(state_dir):
            raise ConfigError(f"Expected an absolute --state-dir (systemd has no working directory of yours); "
                              f"received {str(state_dir)!r}.")
        state = Path(state_dir)
    extra += ["--save", str(state)]  # the state folder must be writable (sequence numbers, spools)
    unit = render_service(st.model, device=st.device, deploy_profile=st.profile, extra_args=extra, user=user,
                          workdir=workdir or path.parent, executable=executable, environment_file=environment_file)
    exe = executable or str(Path(sys.executable).with_name("edgecnn"))
    command = [exe, "station", "run", str(path)] + (["--state-dir", str(state)] if state_dir is not None else [])
    start = "ExecStart=" + systemd_command_line(command)
    lines = [start if line.startswith("ExecStart=") else
             f"Description=edgecnn station {st.name} ({Path(str(st.model or st.profile)).name})"
             if line.startswith("Description=") else line for line in unit.text.splitlines()]
    if st.secret_names:
        env_file = str(environment_file or f"/etc/edgecnn/{st.name}.env")
        if not os.path.isabs(env_file):
            raise ConfigError(f"Expected an absolute --env-file path (systemd reads it at boot); received {env_file!r}.")
        at = lines.index(start)
        lines[at:at] = [f"# the station file reads {', '.join(st.secret_names)} from this file (mode 0600, root)",
                        f"EnvironmentFile={systemd_path(env_file, '--env-file')}"]
    unit.text = "\n".join(lines) + "\n"
    unit.environment = {}
    unit.environment_file = None
    return unit


def write_station_service(station: str | os.PathLike[str], output: str | os.PathLike[str] | None = None,
                          **options: Any) -> tuple[Any, list[Path]]:
    """:func:`render_station_service`, written to ``output`` (atomically) when given.

    Raises:
        ConfigError: as :func:`render_station_service`; an ``output`` that is the station file or not a unit name.
    """
    from edgecnn.devices import _UNIT_FILE
    from edgecnn.fileio import write_text
    from edgecnn.outputs import check_outputs

    if output is not None:
        check_outputs({"--output": output}, {"--station": station})
        if not _UNIT_FILE.match(Path(output).name):
            raise ConfigError(f"Expected --output as a systemd unit file name ending in .service (e.g. "
                              f"edgecnn-line1.service); received {Path(output).name!r}.")
    unit = render_station_service(station, **options)
    if output is None:
        return unit, []
    return unit, [write_text(Path(output), unit.text)]


__all__ = ["render_station_service", "write_station_service"]
