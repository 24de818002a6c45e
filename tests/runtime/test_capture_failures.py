"""A live source whose reader or reopen raises an unexpected error ends the run with a clear error, not an "end"."""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.errors import SourceError
from edgecnn.runtime.sources import SyntheticSource


class _Exploding(SyntheticSource):
    """Delivers 3 frames, then its driver raises (as cv2 or picamera2 can)."""

    def open(self):
        state = {"n": 0}

        def read():
            state["n"] += 1
            if state["n"] > 3:
                raise RuntimeError("driver crashed: VIDIOC_DQBUF")
            return np.zeros((8, 8, 3), np.uint8)

        return read


def test_reader_exception_surfaces_as_source_error():
    src = _Exploding(fps=200, width=8, height=8)
    with pytest.raises(SourceError, match="driver crashed"):
        for _ in src:
            pass
    src.close()


class _ReopenRaises(SyntheticSource):
    def __init__(self, **kw):
        super().__init__(fps=200, width=8, height=8, backoff=0.01, max_backoff=0.01, **kw)
        self.opens = 0

    def open(self):
        self.opens += 1
        if self.opens > 1:
            raise OSError("device busy")
        frames = iter([np.zeros((8, 8, 3), np.uint8)] * 2)
        return lambda: next(frames, None)


def test_reopen_that_raises_counts_as_a_failed_attempt_then_gives_up():
    src = _ReopenRaises(reconnect_tries=2)
    with pytest.raises(SourceError, match="did not come back after 2 reconnect attempts"):
        for _ in src:
            pass
    src.close()
    assert src.opens == 3  # first open + 2 reopen attempts
