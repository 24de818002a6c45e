"""A real multi-node Ray cluster on one machine (head + worker nodes on 127.0.0.1), for tests and benchmarks.

Each node is a ``ray start ... --block`` process in its own process group, so a node can be killed as a
whole (``kill_node``: SIGKILL to the raylet and its workers, as when a machine dies) and the cluster is
always torn down, also on failure. Every wait is bounded in time.

>>> with LocalCluster(nodes=2, cpus_per_node=1) as cluster:
...     run_ray(opts, ScaleOptions(address=cluster.address))
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: Settings for small loopback clusters: no usage stats, no dashboard, a dead node noticed within seconds.
CLUSTER_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_DEDUP_LOGS": "0",
}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_cli() -> list[str]:
    exe = Path(sys.executable).with_name("ray")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ray.scripts.scripts"]


class LocalCluster:
    """Start ``nodes`` Ray nodes on 127.0.0.1 (the first is the head).

    Args:
        nodes: Number of nodes, head included.
        cpus_per_node: ``--num-cpus`` of each node.
        object_store_mb: ``--object-store-memory`` of each node, in MiB.
        log_dir: Where each node's stdout/stderr go (default: a temp folder).
        timeout: Seconds to wait for the cluster to come up.
    """

    def __init__(self, nodes: int = 2, cpus_per_node: int = 1, object_store_mb: int = 100,
                 log_dir: str | os.PathLike[str] | None = None, timeout: float = 90.0) -> None:
        import tempfile

        self.nodes = nodes
        self.cpus = cpus_per_node
        self.store = object_store_mb * 1024 * 1024
        self.timeout = timeout
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="edgecnn-raycluster-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        # Ray 2.5x+ clusters use token authentication; this cluster has its own token, and a driver joins it with
        # driver_env() (an explicit --address never picks up ~/.ray/auth_token by itself).
        import secrets

        token = self.log_dir / "auth_token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        self.driver_env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
        self.env = {**os.environ, **CLUSTER_ENV, **self.driver_env}

    # ------------------------------------------------------------------ lifecycle
    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")
        try:
            proc = subprocess.Popen([*_ray_cli(), "start", *args, "--num-cpus", str(self.cpus),
                                     "--object-store-memory", str(self.store), "--disable-usage-stats", "--block"],
                                    stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        finally:
            log.close()
        self.procs.append(proc)
        return proc

    def start(self) -> LocalCluster:
        """Start the head, then the other nodes; returns when all are alive (raises after ``timeout``)."""
        try:
            self._spawn(["--head", "--node-ip-address", "127.0.0.1", "--port", str(self.port),
                         "--include-dashboard=false"], "head")
            self.wait_nodes(1)
            for i in range(1, self.nodes):
                self._spawn(["--address", self.address, "--node-ip-address", "127.0.0.1"], f"node{i}")
            self.wait_nodes(self.nodes)
        except BaseException:
            self.stop()
            raise
        return self

    def _ask(self, expr: str) -> int:
        """An integer the cluster's state gives, asked by a short-lived driver (-1 when it cannot be asked)."""
        code = ("import ray,sys;ray.init(address=sys.argv[1],logging_level='ERROR',log_to_driver=False);"
                f"print(int({expr}));ray.shutdown()")
        try:
            out = subprocess.run([sys.executable, "-c", code, self.address], capture_output=True, text=True,
                                 timeout=60, env=self.env)
        except subprocess.TimeoutExpired:
            return -1
        lines = [ln for ln in out.stdout.strip().splitlines() if ln.strip().lstrip("-").isdigit()]
        return int(lines[-1]) if lines else -1

    def alive(self) -> int:
        """Alive nodes as the head's GCS sees them (0 when it cannot be asked)."""
        return max(0, self._ask("sum(1 for n in ray.nodes() if n['Alive'])"))

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait (bounded) until every CPU of the cluster is free again (actors of earlier jobs gone)."""
        deadline = time.monotonic() + timeout
        for _ in range(60):
            if self._ask("ray.available_resources().get('CPU', 0)") >= self.nodes * self.cpus:
                return True
            if time.monotonic() > deadline:
                break
            time.sleep(1.0)
        return False

    def wait_nodes(self, count: int, timeout: float | None = None) -> None:
        """Wait (bounded) until exactly ``count`` nodes are alive."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = -1
        for _ in range(200):
            dead = [p.args for p in self.procs if p.poll() is not None and p.returncode not in (0, None)]
            if dead and count > 0 and len(dead) == len(self.procs):
                break
            seen = self.alive()
            if seen == count or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        if seen != count:
            logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                             for p in sorted(self.log_dir.glob("*.log")))
            raise RuntimeError(f"Ray cluster at {self.address}: expected {count} alive nodes, saw {seen}.\n{logs}")

    def kill_node(self, i: int) -> None:
        """SIGKILL node ``i`` (1 = the first non-head node) and everything it started: a machine dying."""
        proc = self.procs[i]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def stop(self) -> None:
        """Tear every node down: SIGTERM (Ray drains up to ~30 s), then SIGKILL what is left. Never raises."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 8
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs:  # the process groups: raylet, workers, GCS; whatever SIGTERM left behind
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.procs = []

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
