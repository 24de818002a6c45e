"""Monitoring on the station: drift and camera health, capture of doubtful frames, and the review page."""

#: The nice value of the monitors' threads (capture, drift): their work is best effort and yields the CPU to
#: inference on a loaded box (Linux gives each thread its own nice value; elsewhere this is a no-op).
MONITOR_NICE = 19


def lower_priority() -> None:
    """Give the calling thread :data:`MONITOR_NICE` (best effort)."""
    import os
    import threading

    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), MONITOR_NICE)
    except (AttributeError, OSError):
        pass
