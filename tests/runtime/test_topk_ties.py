"""Top-k ranking agrees with argmax on ties (int8 outputs are quantized, so ties happen)."""

import numpy as np

from edgecnn.runtime.pipeline import topk_of


def test_ties_go_to_the_lower_index_like_argmax():
    rng = np.random.default_rng(0)
    for _ in range(500):
        probs = rng.integers(0, 4, size=10).astype(np.float32) / 4  # many ties
        assert topk_of(probs, [str(i) for i in range(10)], 3)[0][0] == int(probs.argmax())
    probs = np.array([0.1, 0.45, 0.45, 0.0], dtype=np.float32)
    assert [i for i, _ in topk_of(probs, list("abcd"), 4)] == [1, 2, 0, 3]
