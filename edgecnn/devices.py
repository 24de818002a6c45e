"""Device profiles: one TOML file per board in ``devices/`` (rpi4, rpi5, jetson-orin-nano, coral-devboard, ...).

A profile says which backend, precision, threads, delegate/providers and camera settings suit a board,
and how to install edgecnn there. ``edgecnn run --device rpi4`` applies one (flags still override);
``edgecnn devices list|show|service`` reads them.

Profiles live at the top-level ``devices/`` folder of a checkout; ``edgecnn/profiles`` is a link to it
that setuptools ships as package data, so an installed wheel finds them too.

Size (~420 lines): profile loading plus the systemd unit writer with its field validation; the validation is
the bulk and is only used by the unit writer.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from converters.registry import FULL_PRECISION, PRECISIONS
from edgecnn.config import load_toml, suggest
from edgecnn.errors import ConfigError

#: Where profiles are looked up, first match wins: $EDGECNN_DEVICES_DIR, then the shipped profiles.
PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
SERVICE_TEMPLATE = "edgecnn.service"
_KNOWN_KEYS = {"name", "description", "backend", "precision", "threads", "batch", "delegate", "delegate_options",
               "providers", "source", "camera", "install"}


@dataclass
class DeviceProfile:
    """Settings that suit one kind of board."""

    name: str
    description: str = ""
    backend: str = "auto"
    precision: str = FULL_PRECISION
    threads: int | None = None
    delegate: str | None = None
    delegate_options: dict[str, str] = field(default_factory=dict)
    providers: list[str] = field(default_factory=list)
    camera_width: int | None = None
    camera_height: int | None = None
    camera_fps: float | None = None
    batch: int = 1
    source: str | None = None
    install_extra: str | None = None
    install_notes: str = ""
    path: Path | None = None
    #: Wheel platform tags of the board (``pip download --platform``), newest first; empty: no bundle target.
    install_platforms: list[str] = field(default_factory=list)
    #: The board's Python (``"3.11"``): the wheels a bundle ships are built for it.
    install_python: str | None = None

    def run_options(self) -> dict[str, Any]:
        """The ``edgecnn run`` options this profile sets (None where it leaves the default)."""
        return {
            "backend": self.backend,
            "threads": self.threads,
            "delegate": self.delegate,
            "delegate_options": dict(self.delegate_options) or None,
            "providers": list(self.providers) or None,
            "width": self.camera_width,
            "height": self.camera_height,
            "fps": self.camera_fps,
            "batch": self.batch,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description, "backend": self.backend,
            "precision": self.precision, "threads": self.threads, "batch": self.batch, "delegate": self.delegate,
            "delegate_options": self.delegate_options, "providers": self.providers, "source": self.source,
            "camera": {"width": self.camera_width, "height": self.camera_height, "fps": self.camera_fps},
            "install": {"extra": self.install_extra, "notes": self.install_notes.strip(),
                        "platforms": self.install_platforms, "python": self.install_python},
            "path": str(self.path) if self.path else None,
        }


def profile_dirs() -> list[Path]:
    """Folders searched for ``<name>.toml``, highest priority first."""
    dirs = []
    if os.environ.get("EDGECNN_DEVICES_DIR"):
        dirs.append(Path(os.environ["EDGECNN_DEVICES_DIR"]))
    dirs.append(PROFILES_DIR)
    return [d for d in dirs if d.is_dir()]


def list_profiles() -> list[str]:
    """Names of the available device profiles, sorted."""
    names = {p.stem for d in profile_dirs() for p in d.glob("*.toml")}
    return sorted(names)


def load_profile(name: str | os.PathLike[str]) -> DeviceProfile:
    """A profile by name (``rpi4``) or by path to a TOML file.

    Raises:
        ConfigError: unknown name (the closest is suggested), unknown key or bad value in the file.
    """
    text = str(name)
    path = Path(text)
    if not (text.endswith(".toml") and path.is_file()):
        path = next((d / f"{text}.toml" for d in profile_dirs() if (d / f"{text}.toml").is_file()), None)
        if path is None:
            names = list_profiles()
            raise ConfigError(f"Unknown device profile {text!r}; expected one of {names}.{suggest(text, names)}")
    return _parse(load_toml(path), path)


def _parse(data: dict[str, Any], path: Path) -> DeviceProfile:
    for key in data:
        if key not in _KNOWN_KEYS:
            raise ConfigError(f"Unknown key {key!r} in device profile {path}.{suggest(key, _KNOWN_KEYS)}")
    cam = data.get("camera") or {}
    inst = data.get("install") or {}
    precision = str(data.get("precision", FULL_PRECISION))
    if precision not in PRECISIONS:
        raise ConfigError(f"Device profile {path}: expected precision in {list(PRECISIONS)}; received {precision!r}.")
    backend = str(data.get("backend", "auto"))
    from edgecnn.runtime.backends import BACKENDS

    if backend != "auto" and backend not in BACKENDS:
        raise ConfigError(f"Device profile {path}: expected backend auto or one of {sorted(BACKENDS)}; "
                          f"received {backend!r}.")
    try:
        return DeviceProfile(
            name=str(data.get("name", path.stem)),
            description=str(data.get("description", "")),
            backend=backend,
            precision=precision,
            threads=int(data["threads"]) if data.get("threads") is not None else None,
            delegate=data.get("delegate"),
            delegate_options={str(k): str(v) for k, v in (data.get("delegate_options") or {}).items()},
            providers=[str(p) for p in data.get("providers") or []],
            camera_width=int(cam["width"]) if cam.get("width") else None,
            camera_height=int(cam["height"]) if cam.get("height") else None,
            camera_fps=float(cam["fps"]) if cam.get("fps") else None,
            batch=int(data.get("batch", 1)),
            source=data.get("source"),
            install_extra=inst.get("extra"),
            install_notes=str(inst.get("notes", "")),
            path=path,
            install_platforms=[str(t) for t in inst.get("platforms") or []],
            install_python=str(inst["python"]) if inst.get("python") is not None else None,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Device profile {path} has a bad value: {exc}") from exc


def service_template() -> str:
    """The systemd unit template text (``devices/edgecnn.service``)."""
    for d in profile_dirs():
        if (d / SERVICE_TEMPLATE).is_file():
            return (d / SERVICE_TEMPLATE).read_text(encoding="utf-8")
    raise ConfigError(f"The service template {SERVICE_TEMPLATE} is missing from {PROFILES_DIR}.")


@dataclass
class ServiceUnit:
    """A filled systemd unit, and the environment file holding the secrets it must not contain."""

    text: str
    environment: dict[str, str] = field(default_factory=dict)
    environment_file: str | None = None

    def environment_text(self) -> str:
        """The ``EnvironmentFile=`` content (``KEY="value"`` lines, systemd-quoted)."""
        lines = ["# edgecnn service secrets: keep this file mode 0600, owned by root."]
        for key, value in self.environment.items():
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'{key}="{escaped}"')
        return "\n".join(lines) + "\n"


#: Options of ``edgecnn run`` that the unit sets itself (from the service's own options) or that make no sense
#: in a service (a window needs a display).
_SERVICE_OWNS = {"source": "--source", "camera": "--camera", "device": "--device", "show": "--show",
                 "profile": "--profile"}
_UNIT_FILE = re.compile(r"^[A-Za-z0-9:_.\\@-]{1,200}\.service$")
_USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")


def _no_control(option: str, value: str) -> str:
    bad = [c for c in value if ord(c) < 32 or ord(c) == 127]
    if bad:
        raise ConfigError(f"Expected {option} without control characters (newlines, tabs...); received {value!r}. "
                          "A newline would add directives to the unit.")
    return value


def _has_password(source: str) -> bool:
    from urllib.parse import urlsplit

    if "://" not in source:
        return False
    try:
        return urlsplit(source).password is not None
    except ValueError:
        return "@" in source.split("://", 1)[1].split("/", 1)[0]


def parse_run_args(model: Path, extra_args: list[str]) -> dict[str, Any]:
    """Parse ``--args`` strictly over ``edgecnn run``'s own table of options (:mod:`edgecnn.station.params`, below
    the CLI) and apply run's checks: what ``run`` refuses is refused.

    Raises:
        ConfigError: an unknown option (with the closest spelling) or bad value, an option the unit sets itself, or
            a value that :func:`edgecnn.runtime.options.validate_options` refuses.
    """
    from edgecnn.runtime.options import check_run_outputs, validate_options
    from edgecnn.station.params import RUN_PARAMS, parse_args, run_options

    if "--help" in extra_args:
        raise ConfigError(f"Expected --args as edgecnn run options; received {extra_args!r} (--help only shows help).")
    try:
        params = parse_args([str(model), *extra_args])
    except ConfigError as exc:
        raise ConfigError(f"--args {' '.join(extra_args)!r} is not valid for `edgecnn run`: {exc}") from exc
    defaults = {p.name: p.default for p in RUN_PARAMS}
    for key in _SERVICE_OWNS:
        if params.get(key) not in (None, False, defaults[key]):
            raise ConfigError(f"--args must not set {_SERVICE_OWNS[key]}: the service sets it "
                              f"({'use devices service --' + key if key != 'show' else 'a service has no display'}).")
    for key in ("source", "camera", "device", "show"):
        params.pop(key, None)
    options = run_options({**params, "model": model})
    validate_options(options)
    check_run_outputs(options, writable=False)
    return params


def render_service(
    model: str | os.PathLike[str],
    device: str | None = None,
    source: str | None = None,
    camera: int | None = None,
    extra_args: list[str] | str | None = None,
    user: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    executable: str | None = None,
    environment_file: str | os.PathLike[str] | None = None,
    deploy_profile: str | os.PathLike[str] | None = None,
    secret_params: list[str] | None = None,
) -> ServiceUnit:
    """Fill the systemd unit template for running ``model`` on a camera at boot, restarting on failure.

    The unit is safe by default (README, "The service unit"): it runs as a dedicated account (``edgecnn`` unless
    ``user`` names another; root only when asked), at normal priority, with ``NoNewPrivileges``,
    ``ProtectSystem=strict`` and ``ReadWritePaths`` for the output folders only, ``PrivateTmp``, ``ProtectHome``
    (``read-only`` when a path it needs lies under a home folder), and ``DeviceAllow`` for cameras and GPIO chips
    only (not restricted for a device profile that needs an accelerator's own device nodes). Every path is written
    as systemd reads it back (``%`` doubled, quoted where a list is split), so ``systemd-analyze verify`` accepts
    paths with spaces, ``%``, quotes and any Unicode.

    Every field is validated (no control characters, camera >= 0, a user name's syntax), ``extra_args`` goes
    through ``edgecnn run``'s own parser and checks, and a source with a password is not written into the unit:
    it goes to ``environment_file`` (``EDGECNN_SOURCE=...``, read by ``edgecnn run`` when ``--source`` is not given)
    in :attr:`ServiceUnit.environment`, to be installed with mode 0600.

    Args:
        model: Model file; made absolute (systemd has no working directory of yours).
        device: Device profile name applied with ``--device``.
        source: ``--source`` (stream URL, pipeline...); default: the profile's source, else ``--camera``.
        camera: Camera index (default 0 when no source).
        extra_args: More ``edgecnn run`` arguments, a list or one shell-quoted string
            (e.g. ``"--save-jsonl /var/log/edgecnn.jsonl"``).
        user: Account that runs the service (default: the dedicated ``edgecnn`` account; root only when asked).
        workdir: Working directory (default: the model's folder).
        executable: The ``edgecnn`` launcher (default: beside this Python interpreter).
        environment_file: Where the unit reads its secrets (default ``/etc/edgecnn/<model stem>.env``).
        deploy_profile: A deploy profile from ``bench --pick``; the unit runs ``edgecnn run --profile`` with it
            (its artifact, backend, threads and batch). ``model`` may then be None (the profile's artifact).
        secret_params: More parameter names whose values are secrets (``--secret-param``): masked everywhere, and
            a source holding one goes to the environment file.

    Raises:
        ConfigError: a bad field (named, with what was expected).
    """
    from edgecnn.masking import add_secret_params, has_secret, mask_secrets

    add_secret_params(secret_params or ())
    deploy_path = None
    if deploy_profile is not None:
        from edgecnn.runtime.deploy import load_deploy_profile

        _no_control("--profile", str(deploy_profile))
        deploy_path = Path(deploy_profile).expanduser().resolve()
        prof = load_deploy_profile(deploy_path)  # checked now (artifact present and unchanged), not at boot
        if model is not None and Path(model).expanduser().resolve() != prof.artifact.resolve():
            raise ConfigError(f"MODEL {model} is not the artifact of deploy profile {deploy_path.name} ({prof.artifact}); "
                              "drop MODEL or the --profile.")
        model = prof.artifact
    if model is None:
        raise ConfigError("Expected a MODEL (or --profile FILE from bench --pick); received neither.")
    _no_control("MODEL", str(model))
    model_path = Path(model).expanduser().resolve()
    if not model_path.exists():
        raise ConfigError(f"Model not found: {model_path}; the service needs an existing model file.")
    if model_path.is_dir():
        if not (model_path / "model.keras").is_file():
            raise ConfigError(f"Expected a model file or a run folder with model.keras; {model_path} has none.")
    profile = load_profile(device) if device else None
    if profile is not None:
        _no_control("the device profile's name", profile.name)
    exe = executable or str(Path(sys.executable).with_name("edgecnn"))
    _no_control("--executable", exe)
    args = [exe, "run", str(model_path)]
    if deploy_path is not None:
        args += ["--profile", str(deploy_path)]
    if profile:
        args += ["--device", profile.name]
    if camera is not None and camera < 0:
        raise ConfigError(f"Expected --camera >= 0 (a V4L2 index such as 0 for /dev/video0); received {camera}.")
    if source is not None and camera is not None:
        raise ConfigError("Expected --source or --camera, not both; received both.")
    src = source or (profile.source if profile else None)
    if source is not None and not source.strip():
        raise ConfigError("Expected a non-empty --source.")
    environment: dict[str, str] = {}
    if src:
        _no_control("--source", src)
        if _has_password(src) or has_secret(src):
            environment["EDGECNN_SOURCE"] = src  # `edgecnn run` reads it when --source is absent
        else:
            args += ["--source", src]
    else:
        args += ["--camera", str(0 if camera is None else camera)]
    if isinstance(extra_args, str):
        _no_control("--args", extra_args)
        try:
            extra_args = shlex.split(extra_args)
        except ValueError as exc:
            raise ConfigError(f"Expected --args as shell-quoted edgecnn run arguments; received {extra_args!r} "
                              f"({exc}).") from exc
    extra = [_no_control("--args", a) for a in (extra_args or [])]
    for a in extra:
        if has_secret(a):
            raise ConfigError(f"--args holds a secret ({mask_secrets(a, whole=True)}); a unit is world-readable: give a "
                              "stream URL with credentials as --source (it goes to the 0600 environment file).")
    run_params: dict[str, Any] = {}
    if extra:
        run_params = parse_run_args(model_path, extra)
    args += extra
    if secret_params:
        args += [x for name in secret_params for x in ("--secret-param", _no_control("--secret-param", name))]
    account = _no_control("--user", user or DEFAULT_SERVICE_USER)
    if not _USER_NAME.match(account):
        raise ConfigError(f"Expected --user as an account name (letters, digits, _ . -; at most 32, not starting with "
                          f"a digit or -); received {account!r}.")
    wd = str(Path(workdir).resolve() if workdir else (model_path if model_path.is_dir() else model_path.parent))
    _no_control("--workdir", wd)
    env_file = str(environment_file or f"/etc/edgecnn/{_unit_name(model_path)}.env")
    _no_control("--env-file", env_file)
    if environment and not os.path.isabs(env_file):
        raise ConfigError(f"Expected an absolute --env-file path (systemd reads it at boot); received {env_file!r}.")
    env_line = f"EnvironmentFile={systemd_path(env_file, '--env-file')}" if environment else ""
    writes = _output_folders(run_params)
    reads = [str(model_path), wd, exe, env_file if environment else "", str(deploy_path or "")]
    under_home = [p for p in (*writes, *reads) if p and _under_home(p)]
    protect_home = "ProtectHome=read-only\n" if under_home else "ProtectHome=yes\n"
    camera_source = not src or str(src).startswith("/dev/video")
    accelerator = bool(profile and (profile.delegate or any(
        x in p.lower() for p in profile.providers for x in ("cuda", "tensorrt", "rocm", "openvino"))))
    if accelerator:
        devices = (f"# DevicePolicy left open: the {profile.name} accelerator needs its own device nodes "  # type: ignore[union-attr]
                   "(add DeviceAllow= lines to restrict)\n")
    else:
        devices = "DevicePolicy=closed\nDeviceAllow=char-video4linux rw\nDeviceAllow=char-gpiochip rw\n"
    secret_env = (f"Environment={systemd_command_line(['EDGECNN_SECRET_PARAMS=' + ','.join(secret_params)])}\n"
                  if secret_params else "")
    text = service_template().format(
        name=_unit_name(model_path),
        device=profile.name if profile else "this machine",
        user=account,
        groups="SupplementaryGroups=video\n" if camera_source and account != "root" else "",
        workdir=systemd_path(wd, "--workdir"),
        exec_start=systemd_command_line(args),
        environment=secret_env,
        environment_file=env_line,
        read_write=("ReadWritePaths=" + " ".join(systemd_command_line(["-" + w]) for w in writes) + "\n") if writes
        else "",
        protect_home=protect_home,
        devices=devices,
    )
    return ServiceUnit(text=text.replace("\n\n\n", "\n\n"), environment=environment,
                       environment_file=env_file if environment else None)


#: The account a service runs as unless ``--user`` names another: a system account made for it (README).
DEFAULT_SERVICE_USER = "edgecnn"
_HOME_ROOTS = ("/home", "/root", "/run/user")


def _under_home(path: str) -> bool:
    p = os.path.abspath(path)
    return any(p == h or p.startswith(h + "/") for h in _HOME_ROOTS)


def _output_folders(params: dict[str, Any]) -> list[str]:
    """The folders a service writes (its ``ReadWritePaths``): the folders of --save-csv/--save-jsonl/--save-parquet and
    the --save folder, absolute."""
    out: list[str] = []
    for key in ("save_csv", "save_jsonl", "save_parquet"):
        if params.get(key):
            out.append(os.path.abspath(os.path.dirname(os.path.abspath(str(params[key])))))
    if params.get("save"):
        out.append(os.path.abspath(str(params["save"])))
    return sorted(set(out))


def systemd_path(path: str, option: str) -> str:
    """A single path as a systemd directive takes it (``WorkingDirectory=``, ``EnvironmentFile=``): unquoted (those
    directives take the rest of the line, and a quoted value is "not absolute"), ``%`` doubled (specifiers).

    Raises:
        ConfigError: a path systemd cannot hold: not absolute, or with leading/trailing white space (stripped).
    """
    _no_control(option, path)
    if not os.path.isabs(path):
        raise ConfigError(f"Expected an absolute {option} path; received {path!r}.")
    if path != path.strip():
        raise ConfigError(f"Expected {option} without leading or trailing spaces (systemd strips them); "
                          f"received {path!r}.")
    return path.replace("%", "%%")


def write_service(model: str | os.PathLike[str] | None, output: str | os.PathLike[str] | None = None,
                  **options: Any) -> tuple[ServiceUnit, list[Path]]:
    """:func:`render_service`, then write the unit to ``output`` and its secrets beside it (``NAME.env``, mode 0600).

    Raises:
        ConfigError: a bad field; a source with a password and no ``output`` (the secret must not go to stdout);
            ``output`` that is the model.
    """
    from edgecnn.fileio import atomic_path, write_text
    from edgecnn.outputs import check_outputs

    if output is not None:
        env_out = Path(output).with_suffix(".env")
        inputs = {"MODEL": model} if model is not None else {}
        if options.get("deploy_profile") is not None:
            inputs["--profile"] = options["deploy_profile"]
        check_outputs({"--output": output, "--output (.env beside it)": env_out}, inputs)
        if not _UNIT_FILE.match(Path(output).name):
            raise ConfigError(f"Expected --output as a systemd unit file name (letters, digits and :-_.\\@, ending in "
                              f".service, e.g. edgecnn-cam.service); received {Path(output).name!r}.")
    unit = render_service(model, **options)
    if output is None:
        if unit.environment:
            raise ConfigError("The source holds a password: give --output FILE.service; the password is then written "
                              "to FILE.env (mode 0600), never into the unit or to the terminal.")
        return unit, []
    out = Path(output)
    written = [write_text(out, unit.text)]
    if unit.environment:
        with atomic_path(env_out) as tmp:
            fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, unit.environment_text().encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        written.append(env_out)
    return unit, written


def _unit_name(model_path: Path) -> str:
    stem = model_path.name if model_path.is_dir() else model_path.stem
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "model"


_SYSTEMD_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@+=:,./_-")


def systemd_command_line(args: list[str]) -> str:
    """An ``ExecStart=`` value that systemd splits back into exactly ``args``.

    systemd is not a shell: it expands ``%`` specifiers and ``$VAR`` in the line and unescapes C escapes
    inside double quotes, so ``%`` → ``%%``, ``$`` → ``$$``, and arguments with anything but safe characters
    are double-quoted with ``\\`` and ``\"`` escaped (``shlex.join``'s ``'"'"'`` is not understood).
    """
    out = []
    for arg in args:
        text = arg.replace("%", "%%").replace("$", "$$")
        if not arg or any(c not in _SYSTEMD_SAFE for c in arg):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(text)
    return " ".join(out)
