"""The on-box self-check of a release, run by the installer inside the release's own venv.

``python -m edgecnn.deploy.selfcheck RELEASE --out FILE [--user U]``:

* **parity**: the artifact runs on this box's runtime (the one the bundle's wheels installed) against
  ``golden.npz`` with the same gate as ``edgecnn export`` (:func:`edgecnn.parity.check_artifact`, default
  :class:`~edgecnn.parity.Gates`);
* **benchmark**: a short latency loop (:func:`edgecnn.bench.measure.measure_latency`, the bench timing loop) with
  the bundle's runtime options; p50/p99 are recorded next to the figures the deploy profile measured elsewhere;
* **unit**: the systemd unit for this release, written by :func:`edgecnn.devices.render_service` with this box's
  paths and ``--user``; a bundled station file runs as a station (:func:`render_unit`).

The result is written to ``--out`` as JSON (``passed``, ``reason``, ``parity``, ``latency``, ``profile_measured``);
the installer reads it and decides. Exit 0 when it passed, 1 when it did not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

#: The short benchmark: a few hundred milliseconds on a Pi, bounded by count and time.
SELFCHECK_RUNS = 30
SELFCHECK_SECONDS = 0.5
SELFCHECK_MAX_SECONDS = 10.0


def self_check(release: str | os.PathLike[str], user: str | None = None) -> dict[str, Any]:
    """Check the release at ``release`` on this box; returns the result (never raises for a failed gate)."""
    from edgecnn.bench.measure import BenchSettings, measure_latency
    from edgecnn.errors import EdgeCNNError
    from edgecnn.parity import Gates, check_artifact, load_golden
    from edgecnn.runtime.backends import load_backend

    release = Path(release)
    manifest = json.loads((release / "MANIFEST.json").read_text(encoding="utf-8"))
    artifact = release / manifest["artifact"]["path"]
    golden = release / manifest["golden"]
    options = {k: v for k, v in (manifest.get("runtime") or {}).items()
               if k in ("backend", "threads", "providers", "delegate", "delegate_options") and v is not None}
    result: dict[str, Any] = {"passed": False, "reason": None, "parity": None, "latency": None,
                              "profile_measured": manifest.get("profile_measured"), "runtime_options": options}
    t0 = time.perf_counter()
    try:
        ref = load_golden(golden)
        par = check_artifact(artifact, ref, Gates(), **options)
        result["parity"] = {k: getattr(par, k) for k in ("samples", "max_abs", "mean_abs", "agreement", "accuracy",
                                                          "accuracy_reference", "accuracy_drop", "gate", "failures",
                                                          "precision", "format", "runtime")}
        if not par.passed:
            result["reason"] = f"{artifact.name} fails its golden set on this box: {'; '.join(par.failures)}"
            return result
        settings = BenchSettings(runs=SELFCHECK_RUNS, min_seconds=SELFCHECK_SECONDS, max_seconds=SELFCHECK_MAX_SECONDS,
                                 warmup=3, warmup_seconds=0.1)
        with load_backend(artifact, **options) as be:
            prepared = be.prepare(ref.inputs[:1])
            m = measure_latency(be.infer, prepared, settings)
        result["latency"] = {"p50_ms": m.stats.p50_ms, "p99_ms": m.stats.p99_ms, "mean_ms": m.stats.mean_ms,
                             "runs": m.stats.count, "first_ms": m.first_ms, "batch": 1}
        result["unit"] = str(write_unit(release, manifest, user))
    except EdgeCNNError as exc:
        result["reason"] = str(exc)
        return result
    result["passed"] = True
    result["seconds"] = time.perf_counter() - t0
    return result


def write_unit(release: Path, manifest: dict[str, Any], user: str | None) -> Path:
    """The systemd unit of this release (``RELEASE/edgecnn.service``), from :func:`render_unit`."""
    from edgecnn.deploy.releases import state_dir
    from edgecnn.fileio import write_text

    out = release / "edgecnn.service"
    write_text(out, render_unit(release, manifest, user, state_dir(release.parent.parent)))
    return out


def render_unit(release: Path, manifest: dict[str, Any], user: str | None, state: str | os.PathLike[str]) -> str:
    """The text of a release's unit, by the one unit writer (:mod:`edgecnn.devices`).

    A bundle with a station file runs ``edgecnn station run RELEASE/model/station.toml --state-dir STATE``
    (:func:`edgecnn.station.service.render_station_service`); ``STATE`` is ``PREFIX/state``, outside the release, so
    the decision sequence number, spools and captures survive an update or a rollback (the installer makes it, owned
    by the service's account). A station file that names an absolute ``state_dir`` keeps it. Without a station file
    the unit runs ``edgecnn run`` on the model (or ``--profile``).
    """
    from edgecnn.devices import list_profiles, render_service

    executable = str(release / "venv" / "bin" / "edgecnn")
    environment_file = f"/etc/edgecnn/{manifest['id']}.env"
    if manifest.get("station_file"):
        from edgecnn.station.service import render_station_service

        station = release / manifest["station_file"]
        return render_station_service(station, user=user, workdir=release, executable=executable,
                                      environment_file=environment_file,
                                      state_dir=None if _names_absolute_state_dir(station) else state).text
    target = (manifest.get("target") or {}).get("name")
    deploy = manifest.get("deploy_profile")
    options: dict[str, Any] = {
        "device": target if target in list_profiles() else None,
        "user": user,
        "workdir": release,
        "executable": executable,
        "environment_file": environment_file,
    }
    model: Path | None = release / manifest["artifact"]["path"]
    if deploy:
        options["deploy_profile"] = release / deploy
        model = None
    return render_service(model, **options).text


def _names_absolute_state_dir(station: Path) -> bool:
    """Whether the station file states its own absolute ``state_dir`` (kept; else the box's ``PREFIX/state``)."""
    import tomllib

    value = tomllib.loads(station.read_text(encoding="utf-8")).get("state_dir")
    return isinstance(value, str) and Path(value).expanduser().is_absolute()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgecnn.deploy.selfcheck")
    parser.add_argument("release", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--user")
    args = parser.parse_args(argv)
    from edgecnn.fileio import write_json

    result = self_check(args.release, user=args.user)
    write_json(args.out, result)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
