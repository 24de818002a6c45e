"""Monitoring on the station: drift and camera health, capture of doubtful frames, and the review page."""

#: The nice value of the monitors' threads (capture, drift). 0: a raised nice value made things worse, because
#: these threads hold the GIL through their numpy work, and a nice-19 thread descheduled by a loaded CPU while
#: holding it makes the engine's thread wait (priority inversion). benchmarks/monitor_cost.py measured p50 latency
#: 1.73x with 19 against 1.25x with 0 (load 10-13 on 2 CPUs). ``EDGECNN_MONITOR_NICE`` overrides it.
MONITOR_NICE = 0


def lower_priority() -> None:
    """Give the calling thread :data:`MONITOR_NICE` (best effort)."""
    import os
    import threading

    nice = int(os.environ.get("EDGECNN_MONITOR_NICE", MONITOR_NICE))  # benchmarks compare
    if not nice:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError):
        pass


class Worker:
    """A bounded queue drained by one thread of its own (capture and drift both run this way): the engine's
    thread only queues (:meth:`_queue` raises ``queue.Full`` for the caller to count), :meth:`_handle` runs on the
    worker, and :meth:`_stop` handles every item queued before it, however far behind the worker is."""

    def _start_worker(self, maxsize: int, name: str, start: bool) -> None:
        import queue
        import threading

        self._q: queue.Queue = queue.Queue(maxsize=maxsize)
        self._closed = False
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
            self._thread.start()

    def _handle(self, item: object) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        lower_priority()
        while not self._closed:  # a close stops the worker after the item in hand
            item = self._q.get()
            if item is None:
                return
            self._handle(item)

    def _stop(self, timeout: float) -> bool:
        """Handle every queued item, then stop; False when it was stopped already.

        The worker stops after the item in hand (waited for up to ``timeout``); what is still queued is handled
        here, on the caller's thread, in order. So what an observer raises for the frames it was given reaches the
        engine before the engine drains its alarms and closes its rows, however little CPU the worker got while a
        short source ran (a flaky station test: the bounded wait expired on a loaded box and the alarm came
        after the rows were closed). Only a worker stuck in one item past ``timeout`` leaves the rest unhandled
        (handling beside it would race); they are counted by :meth:`_unhandled`.
        """
        import contextlib
        import queue

        if self._closed:
            return False
        self._closed = True
        if self._thread is not None:
            with contextlib.suppress(queue.Full):
                self._q.put_nowait(None)  # wakes a worker waiting for work (a full queue: it is busy, not waiting)
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._unhandled(sum(1 for item in list(self._q.queue) if item is not None))
                return True
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return True
            if item is not None:
                self._handle(item)

    def _unhandled(self, count: int) -> None:
        """Items a stuck worker left at close (subclasses count them)."""

    @property
    def _worker_stuck(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
