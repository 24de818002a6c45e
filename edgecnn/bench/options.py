"""``edgecnn bench`` options: comma lists of threads, batches, providers and CPUs, merged over a device profile."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.errors import ConfigError


def parse_int_list(value: str | Sequence[int | None] | int | None, option: str, allow_auto: bool = False) -> list[int | None]:
    """``"1,2,4"`` → ``[1, 2, 4]``; ``None`` → ``[None]``; ``"auto"`` → ``None`` where allowed.

    Raises:
        ConfigError: an entry that is not a positive integer.
    """
    if value is None:
        return [None]
    if isinstance(value, int):
        items: list[Any] = [value]
    elif isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    else:
        items = list(value)
    out: list[int | None] = []
    for item in items:
        if item is None or (allow_auto and isinstance(item, str) and item.lower() == "auto"):
            out.append(None)
            continue
        try:
            n = int(item)
        except (TypeError, ValueError):
            n = 0
        if n < 1:
            hint = " or 'auto'" if allow_auto else ""
            raise ConfigError(f"Expected {option} as positive integers{hint} separated by commas (e.g. 1,2,4); received {value!r}.")
        out.append(n)
    if not out:
        raise ConfigError(f"Expected at least one value for {option}; received {value!r}.")
    return list(dict.fromkeys(out))


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells, else the machine's count)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def warn_oversubscribed(threads: Sequence[int | None]) -> None:
    """One warning when a sweep asks for more threads than there are cores: those rows measure contention."""
    cores = usable_cores()
    over = [t for t in threads if t is not None and t > cores]
    if over:
        from edgecnn.console import warn

        warn(f"--threads {','.join(map(str, over))}: more threads than the {cores} cores this process may use; "
             f"those rows measure threads competing for cores, not a faster setting.")


def parse_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return [v.strip() for v in items if v.strip()] or None


def parse_cpus(value: str | Sequence[int]) -> list[int]:
    """``"0,1"`` / ``"0-3"`` / ``[0, 1]`` → sorted CPU numbers."""
    out: list[int] = []
    parts = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    for part in parts:
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            out += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
        except ValueError as exc:
            raise ConfigError(f"Expected --cpus as CPU numbers or ranges (e.g. 0,1 or 0-3); received {value!r}.") from exc
    if not out or min(out) < 0:
        raise ConfigError(f"Expected --cpus as CPU numbers or ranges (e.g. 0,1 or 0-3); received {value!r}.")
    return sorted(set(out))


@dataclass
class SweepPlan:
    backend: str
    threads: list[int | None]
    batches: list[int]
    delegate: str | None
    delegate_options: dict[str, str]
    providers: list[str] | None
    precision: str | None
    label: str | None
    backend_from_profile: bool = False

    def backend_for_file(self, path: Path) -> str:
        """The profile's backend is a preference: a file it cannot run uses the backend of its type."""
        from edgecnn.runtime.backends import preferred_backend

        return preferred_backend(path, self.backend) if self.backend_from_profile else self.backend


def sweep_plan(
    device: str | None,
    backend: str | None,
    threads: Any,
    batches: Any,
    delegate: str | None,
    delegate_options: dict[str, str] | None,
    providers: Any,
) -> SweepPlan:
    """Merge a device profile (if any) under the explicit options: flags override the profile."""
    prof: Any = None
    if device:
        try:
            from edgecnn.devices import load_profile
        except ImportError as exc:  # pragma: no cover - the devices module ships with edgecnn
            raise ConfigError(f"Device profiles are not available in this install ({exc}).") from exc
        prof = load_profile(device)

    def pick(value: Any, attr: str, default: Any) -> Any:
        if value is not None:
            return value
        got = getattr(prof, attr, None) if prof is not None else None
        return got if got not in (None, "", [], {}) else default

    thread_counts = parse_int_list(pick(threads, "threads", None), "--threads", allow_auto=True)
    warn_oversubscribed(thread_counts)
    return SweepPlan(
        backend=pick(backend, "backend", "auto"),
        threads=thread_counts,
        batches=[int(b) for b in parse_int_list(pick(batches, "batch", 1), "--batch")],  # type: ignore[arg-type]
        delegate=pick(delegate, "delegate", None),
        delegate_options=dict(pick(delegate_options or None, "delegate_options", {}) or {}),
        providers=parse_list(pick(providers, "providers", None)),
        precision=getattr(prof, "precision", None) if prof is not None else None,
        label=(getattr(prof, "name", None) or device) if prof is not None else None,
        backend_from_profile=backend is None and prof is not None and getattr(prof, "backend", None) not in (None, "auto"),
    )
