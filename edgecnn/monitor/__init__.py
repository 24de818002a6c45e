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
    worker, and :meth:`_stop` lets the worker finish what is queued within ``timeout``."""

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
        while True:
            item = self._q.get()
            if item is None:
                return
            self._handle(item)

    def _stop(self, timeout: float) -> bool:
        """Finish the queued items (within ``timeout``) and stop; False when it was stopped already."""
        import queue

        if self._closed:
            return False
        self._closed = True
        if self._thread is not None:
            try:
                self._q.put(None, timeout=timeout)
            except queue.Full:
                pass
            self._thread.join(timeout)
        return True
