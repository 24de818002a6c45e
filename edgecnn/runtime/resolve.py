"""Run options filled from profiles, in the one order: defaults < device profile < deploy profile < given values.

:func:`resolve_options` is the only code that applies profiles; ``edgecnn run``, the Ray engine, the Python API
and the station plan (:mod:`edgecnn.station.plan`, which adds the station file between the deploy profile and the
command line) all call it, and it marks its result resolved so nothing applies a profile twice.
"""

from __future__ import annotations

from pathlib import Path

from edgecnn.console import info
from edgecnn.errors import ConfigError
from edgecnn.runtime.backends import preferred_backend
from edgecnn.runtime.options import RunOptions


def _figure(value: object) -> str:
    """A measured figure as a reader wants it: 4 decimals, not ``0.967741935483871``."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def apply_deploy_profile(opts: RunOptions) -> RunOptions:
    """Take the artifact, backend, threads and batch from ``opts.profile`` (``bench --pick``); flags given win.

    Raises:
        ConfigError / ModelError: a bad profile, or a MODEL that is not the profile's artifact.
    """
    if opts.profile is None and opts.model is not None and Path(opts.model).is_dir():
        from edgecnn.runtime.deploy import pick_from_folder

        picked = pick_from_folder(opts.model)  # a run or export folder: its deploy profile, else its best artifact
        info(picked.why)
        opts.model, opts.profile = (None, picked.profile) if picked.profile else (picked.model, None)
    if opts.profile is None:
        if opts.model is None:
            raise ConfigError("Expected a MODEL (or --profile FILE from bench --pick); received neither.")
        return opts
    from edgecnn.runtime.deploy import load_deploy_profile

    prof = load_deploy_profile(opts.profile)
    if opts.model is not None and Path(opts.model).resolve() != prof.artifact.resolve():
        raise ConfigError(f"MODEL {opts.model} is not the artifact of deploy profile {Path(opts.profile).name} "
                          f"({prof.artifact}); drop MODEL or the --profile.")
    opts.model = prof.artifact
    for key in ("backend", "threads", "batch", "providers", "delegate", "delegate_options"):
        if getattr(opts, key) is None and getattr(prof, key) is not None:
            setattr(opts, key, getattr(prof, key))
    m = prof.measured
    info(f"Deploy profile {Path(opts.profile).name}: {prof.artifact.name} backend={prof.backend} "
         f"threads={prof.threads or 'default'} batch={prof.batch} (measured p50 {m.get('p50_ms', float('nan')):.3f} ms, "
         f"accuracy {_figure(m.get('accuracy'))})")
    return opts


def apply_device(opts: RunOptions) -> RunOptions:
    """Fill options left unset from ``opts.device``'s profile (explicit flags win)."""
    if not opts.device:
        return opts
    from edgecnn.devices import load_profile

    profile = load_profile(opts.device)
    backend_given = opts.backend is not None
    for key, value in profile.run_options().items():
        if getattr(opts, key) is None and value is not None:
            setattr(opts, key, value)
    if not backend_given and opts.backend and preferred_backend(opts.model, opts.backend) == "auto":
        info(f"Device profile {profile.name} prefers the {opts.backend} backend; running {Path(opts.model).name} "
             f"with the backend of its type.")
        opts.backend = None
    if opts.source is None and opts.camera is None and profile.source:
        opts.source = profile.source
    info(f"Device profile {profile.name}: {profile.description}")
    return opts


def resolve_options(opts: RunOptions, origins: dict[str, str] | None = None) -> RunOptions:
    """``opts`` with the deploy profile, then the device profile, filling what was left unset (in place, as
    ``run(opts)`` always did; the station plan hands engines a copy of its own).

    Values given win over the deploy profile, which wins over the device profile. Already resolved options are
    returned unchanged. ``origins`` (option -> where its value came from) gets the options each profile set.

    Raises:
        ConfigError / ModelError: a bad profile, or a MODEL that is not the deploy profile's artifact.
    """
    if opts.resolved:
        return opts
    before = dict(vars(opts))
    out = apply_deploy_profile(opts)
    middle = dict(vars(out))
    out = apply_device(out)
    if origins is not None:
        for key, value in middle.items():
            if value != before.get(key):
                origins[key] = (f"deploy profile {Path(middle['profile']).name}" if middle.get("profile")
                                else f"the best artifact of {Path(str(before.get('model'))).name}")
        for key, value in vars(out).items():
            if value != middle.get(key):
                origins[key] = f"device profile {opts.device}"
    out.resolved = True
    return out


__all__ = ["apply_deploy_profile", "apply_device", "resolve_options"]
