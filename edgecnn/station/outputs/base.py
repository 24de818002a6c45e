"""What every station output shares: a bounded queue and one worker thread, counters, decision filters, masking.

An output's :meth:`QueuedOutput.submit` and :meth:`QueuedOutput.alarm` run on the engine's thread: they put the
event on a bounded in-memory queue and return. When the queue is full the event is counted
(:attr:`OutputStats.dropped`), one warning line is printed for the first overflow, and the caller goes on: a slow
or dead output never slows inference and never raises into the engine. The worker thread takes events off the queue
and hands them to the kind's :meth:`QueuedOutput.handle`; an exception there is counted (``errors``) and the
worker goes on.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from edgecnn.station import events
from edgecnn.station.fields import option as field  # noqa: F401 - each output kind's config fields


def mask(text: str, whole: bool = False) -> str:
    """``text`` with credentials (``user:pass@`` in URLs, ``password=``/``token=`` values) replaced by ``***``
    (:func:`edgecnn.masking.mask_secrets`; ``whole``: ``text`` is one URL, whose password may hold any character)."""
    from edgecnn.masking import mask_secrets

    return mask_secrets(text, whole=whole)


def matches(decision: events.Decision, follow: str) -> bool:
    """Whether ``decision`` is one an output that follows ``follow`` acts on.

    ``follow`` is ``"station"`` (the station verdict only), ``"*"`` (every decision), a source name (its regions'
    decisions) or ``"source/region"``.
    """
    if follow == "*":
        return True
    if follow == events.STATION:
        return decision.is_station
    source, _, region = follow.partition("/")
    return decision.source == source and (not region or decision.region == region)


def check_follow(follow: str) -> str:
    """The ``follow`` value, or a ConfigError naming what is expected."""
    from edgecnn.errors import ConfigError

    if not follow or follow.count("/") > 1 or follow.startswith("/") or follow.endswith("/"):
        raise ConfigError(f"follow: expected 'station', '*', a source name or 'source/region'; received {follow!r}")
    return follow


def check_port(host: str, port: int, name: str) -> events.Reachability:
    """Whether a TCP server of ours can listen on ``host:port`` now."""
    import socket

    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        return events.Reachability(name, False, f"cannot resolve {host!r}: {exc.strerror or exc}")
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            return events.Reachability(name, False, f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                                                    "(another server on that port? pick another port)")
    return events.Reachability(name, True, f"can listen on {host}:{port}")


def check_connect(host: str, port: int, name: str, timeout: float = 3.0) -> events.Reachability:
    """Whether a TCP connection to ``host:port`` opens now."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return events.Reachability(name, False, f"cannot connect to {host}:{port}: {exc.strerror or exc}")
    return events.Reachability(name, True, f"{host}:{port} accepts connections")


def check_ready(name: str, validate: Callable[[], None], *need: str) -> events.Reachability | None:
    """None when ``validate()`` passes and the extra ``need`` names (``module, extra, purpose`` as
    :func:`edgecnn.errors.require` takes them) is installed; else the unreachable row that says why."""
    from edgecnn.errors import EdgeCNNError, require

    try:
        validate()
        if need:
            require(*need)
    except EdgeCNNError as exc:
        return events.Reachability(name, False, str(exc))
    return None


def check_server(name: str, validate: Callable[[], None], host: str, port: int, *need: str) -> events.Reachability:
    """Whether a server output (Modbus, OPC UA) is set up right, its extra installed, and its port free now."""
    return check_ready(name, validate, *need) or check_port(host, port, name)


def failure(exc: BaseException) -> str:
    """Why a server could not start, in a few words (the OS's reason where there is one)."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


class ServerLoop:
    """An asyncio event loop running on a daemon thread of its own, for an output that serves clients from the
    worker's side (Modbus, OPC UA): :meth:`call` runs a coroutine there and waits for it."""

    def __init__(self, thread_name: str) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=thread_name, daemon=True)
        self._thread.start()

    def call(self, coro: Any, timeout: float = 10.0) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def stop(self, closing: Any = None, timeout: float = 5.0) -> None:
        """Run the ``closing`` coroutine (the server's own stop; its failure is ignored), then end the loop."""
        if closing is not None:
            try:
                self.call(closing, timeout)
            except Exception:  # noqa: BLE001, S110 - closing
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


class QueuedOutput:
    """The base of every output: a bounded queue drained by one daemon worker thread.

    Subclasses set :attr:`kind`, implement :meth:`handle` (one event, on the worker thread) and may override
    :meth:`open` (on :meth:`start`, before the worker runs), :meth:`idle` (called when the queue has been empty for
    ``idle_interval`` seconds) and :meth:`shutdown` (after the worker stopped).
    """

    kind = "output"
    idle_interval = 0.1
    #: Most events the worker takes off the queue at once for :meth:`handle_batch` (1: one at a time).
    batch_max = 1

    def __init__(self, name: str, queue_size: int) -> None:
        self.name = name
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, int(queue_size)))
        self._stats = events.OutputStats(name=name, kind=self.kind)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ the engine's side (never blocks or raises)
    def submit(self, decision: events.Decision) -> None:
        self._put(decision)

    def alarm(self, alarm: events.Alarm) -> None:
        self._put(alarm)

    def _put(self, item: Any) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self._stats.dropped += 1
            self.warn_once("queue", f"{self.kind} output {self.name!r}: its queue of {self._queue.maxsize} is full "
                                    "(the receiver is slow or gone); what overflows is dropped and counted")
        except Exception:  # noqa: BLE001 - the engine's thread must never see an output's failure
            with self._lock:
                self._stats.dropped += 1

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        self.open()
        self._thread = threading.Thread(target=self._run, name=f"edgecnn-{self.kind}-{self.name}", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Let the worker drain the queue for up to ``timeout`` seconds, then stop it and release the output."""
        deadline = time.monotonic() + max(0.0, timeout)
        if self._thread is not None:
            while self._queue.unfinished_tasks and time.monotonic() < deadline and self._thread.is_alive():
                time.sleep(0.01)
            self._stop.set()
            self._thread.join(max(0.05, deadline - time.monotonic()))
        self._stop.set()
        try:
            self.shutdown(max(0.0, deadline - time.monotonic()))
        except Exception as exc:  # noqa: BLE001 - closing reports, never raises into the engine's teardown
            self.count_error(exc)

    def stats(self) -> events.OutputStats:
        with self._lock:
            self._stats.queue_depth = self._queue.qsize()
            self.fill_stats(self._stats)
            return dataclasses.replace(self._stats)

    # ------------------------------------------------------------------ the worker
    def _run(self) -> None:
        last_idle = time.monotonic()
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=self.idle_interval)
            except queue.Empty:
                item = None
            if item is not None:
                batch = [item]
                while len(batch) < self.batch_max:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                try:
                    self.handle_batch(batch)
                except Exception as exc:  # noqa: BLE001 - one bad batch never stops the output
                    self.count_error(exc)
                finally:
                    for _ in batch:
                        self._queue.task_done()
            now = time.monotonic()
            if item is None or now - last_idle >= self.idle_interval:
                last_idle = now
                try:
                    self.idle()
                except Exception as exc:  # noqa: BLE001
                    self.count_error(exc)

    # ------------------------------------------------------------------ for subclasses
    def open(self) -> None:
        """Connect, bind or open the line (raise EdgeCNNError when it cannot)."""

    def handle(self, item: events.Decision | events.Alarm) -> None:
        raise NotImplementedError

    def handle_batch(self, items: list[events.Decision | events.Alarm]) -> None:
        """Events taken off the queue together (up to :attr:`batch_max`), oldest first; one :meth:`handle` each."""
        for item in items:
            try:
                self.handle(item)
            except Exception as exc:  # noqa: BLE001 - one bad event never stops the output
                self.count_error(exc)

    def idle(self) -> None:
        """Periodic work on the worker thread (heartbeats, resends)."""

    def shutdown(self, timeout: float) -> None:
        """Release what :meth:`open` took."""

    def fill_stats(self, stats: events.OutputStats) -> None:
        """Update kind-specific counters (called under the stats lock)."""

    def count_sent(self, n: int = 1) -> None:
        with self._lock:
            self._stats.sent += n

    def count_error(self, exc: BaseException | str) -> None:
        text = mask(exc if isinstance(exc, str) else (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__))
        with self._lock:
            self._stats.errors += 1
            self._stats.last_error = text

    def set_connected(self, connected: bool) -> None:
        with self._lock:
            self._stats.connected = connected

    def warn_once(self, key: str, message: str) -> None:
        """Print ``message`` as one warning line the first time ``key`` is seen (later ones are only counted)."""
        if key in self._warned:
            return
        self._warned.add(key)
        from edgecnn.console import warn

        warn(mask(message))


class ServerOutput(QueuedOutput):
    """An output that serves clients (Modbus, OPC UA) from a :class:`ServerLoop`: :meth:`open` starts the loop and
    the kind's server (one line when it cannot), :meth:`shutdown` stops both.

    Subclasses set :attr:`needs` and implement :meth:`_serve` (set ``self._server``), :meth:`_closing` and
    :meth:`start_error`.
    """

    #: What :func:`edgecnn.errors.require` needs for this kind: (module, extra, purpose).
    needs: tuple[str, str, str] = ("", "", "")
    serve_timeout = 30.0
    stop_timeout = 5.0
    _loop: ServerLoop | None = None
    _server: Any = None

    def open(self) -> None:
        from edgecnn.errors import EdgeCNNError, require

        require(*self.needs)
        self._loop = ServerLoop(f"edgecnn-{self.kind}-{self.name}")
        try:
            self._loop.call(self._serve(), self.serve_timeout)
        except Exception as exc:  # noqa: BLE001 - one line for whatever the server raised
            self._stop_loop()
            raise EdgeCNNError(self.start_error(failure(exc))) from None
        self.set_connected(True)

    def _stop_loop(self) -> None:
        if self._loop is None:
            return
        self._loop.stop(self._closing() if self._server is not None else None, self.stop_timeout)
        self._server = None
        self._loop = None

    def shutdown(self, timeout: float) -> None:
        self._stop_loop()
        self.set_connected(False)

    async def _serve(self) -> None:
        """Start the server on the loop (runs there)."""
        raise NotImplementedError

    def _closing(self) -> Any:
        """The coroutine that stops ``self._server``."""
        raise NotImplementedError

    def start_error(self, why: str) -> str:
        """The one line when the server cannot start (``why``: the OS's reason), with the fix."""
        raise NotImplementedError
