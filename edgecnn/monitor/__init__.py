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
