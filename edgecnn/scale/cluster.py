"""Connecting to Ray: start a local instance for the length of a command, or join a running cluster.

Ray is an optional dependency (``pip install 'edgecnn[ray]'``); nothing here imports it at module level.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from edgecnn.errors import ConfigError, MissingDependencyError

#: Object store of a Ray instance started by a command (results and path lists are small; keep RAM for the work).
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024

#: ``--engine`` values; ``local`` is edgecnn's own pipeline on this machine.
ENGINES = ("local", "ray")


def require_ray(purpose: str = "for --engine ray") -> Any:
    """Import ``ray`` (with Ray Data's pyarrow) or raise a helpful :class:`MissingDependencyError`."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage-stats prompt or upload from a CLI
    try:
        import pyarrow  # noqa: F401  (ray[data] brings it; plain ray does not)
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"Ray Data is not installed (needed {purpose}): pip install 'edgecnn[ray]' on this machine and on "
            f"every node of the cluster (missing module: {exc.name})."
        ) from exc
    return ray


def check_engine(engine: str) -> str:
    """Validate an ``--engine`` value."""
    if engine not in ENGINES:
        raise ConfigError(f"Expected --engine {' or '.join(ENGINES)}; received {engine!r}.")
    return engine


def check_address(engine: str, address: str | None, workers: int | None = None) -> None:
    """``--address`` (and, where it only means Ray workers, ``--workers``) need ``--engine ray``."""
    if engine != "ray":
        if address:
            raise ConfigError(f"--address {address} joins a Ray cluster; add --engine ray.")
        if workers:
            raise ConfigError(f"--workers {workers} sets Ray workers; add --engine ray.")


@dataclass
class ClusterInfo:
    """The Ray cluster a command runs on."""

    address: str | None
    started_here: bool
    nodes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cpus(self) -> int:
        return int(sum(n.get("Resources", {}).get("CPU", 0) for n in self.nodes))

    def cpu_nodes(self) -> list[dict[str, Any]]:
        return [n for n in self.nodes if n.get("Resources", {}).get("CPU", 0) >= 1]

    def describe(self) -> str:
        where = f"cluster {self.address}" if self.address else "a local Ray instance"
        return f"{where} ({len(self.nodes)} node{'s' if len(self.nodes) != 1 else ''}, {self.cpus} CPUs)"


def alive_nodes() -> list[dict[str, Any]]:
    """Nodes of the connected cluster that are alive (``ray.nodes()`` entries)."""
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def probe_address(address: str, timeout: float = 5.0) -> None:
    """Fail fast (one line) when nothing listens at ``HOST:PORT``: ``ray.init`` would retry for minutes.

    ``auto`` and Ray Client addresses (``ray://...``) are left to Ray.
    """
    import socket

    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"Expected --address HOST:PORT of a Ray head (e.g. 10.0.0.1:6379); received {address!r}.")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(
            f"Cannot reach the Ray head at {address}: {exc.strerror or exc}. Expected a running head node there "
            f"(start one with `ray start --head --port {port}`), or leave out --address to run on this machine."
        ) from exc


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None, verbose: bool = False) -> Iterator[ClusterInfo]:
    """Connect to Ray for the block: join ``address`` or start (and finally stop) a local instance.

    A Ray connection made by the caller beforehand (library use) is reused and left open.

    Raises:
        MissingDependencyError: Ray Data is not installed.
        ConfigError: the cluster at ``address`` cannot be reached.
    """
    ray = require_ray()
    if not verbose:  # a command prints its own progress and one warning for retries; Ray's INFO lines are noise
        for name in ("ray.data", "ray._private.authentication.authentication_token_setup"):
            logging.getLogger(name).setLevel(logging.ERROR)
    if ray.is_initialized():
        yield ClusterInfo(address=address, started_here=False, nodes=alive_nodes())
        return
    kwargs: dict[str, Any] = {"logging_level": logging.INFO if verbose else logging.WARNING, "log_to_driver": verbose,
                              "include_dashboard": False, "configure_logging": True}
    if address:
        probe_address(address)
        kwargs["address"] = address
    else:
        kwargs.update(address="local", num_cpus=num_cpus or os.cpu_count() or 1,
                      object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    try:
        ray.init(**kwargs)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if address and "Authentication" in f"{type(exc.__cause__).__name__} {exc.__cause__}":
            raise ConfigError(
                f"The Ray cluster at {address} refused this driver's token. Expected its token authentication: set "
                f"RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH, default "
                f"~/.ray/auth_token)."
            ) from exc
        if address:
            raise ConfigError(
                f"Cannot join the Ray cluster at {address}: {first}. Expected the address of a running head node "
                f"(start one with `ray start --head --port 6379`), or leave out --address to run on this machine."
            ) from exc
        raise ConfigError(f"Cannot start a local Ray instance: {first}") from exc
    try:
        yield ClusterInfo(address=address, started_here=not address, nodes=alive_nodes())
    finally:
        ray.shutdown()
