"""``python -m edgecnn.training.child CONFIG.json RESULT.json``: one training run in a fresh process.

:func:`edgecnn.training.train` uses it when Keras is already imported with another backend in the calling process
(Keras 3 fixes its backend at import). The parent sets ``KERAS_BACKEND``; the result (or the error) comes back as
JSON; progress goes to the inherited stderr.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(request: str, answer: str) -> int:
    from edgecnn.console import set_quiet
    from edgecnn.errors import EdgeCNNError
    from edgecnn.fileio import write_json
    from edgecnn.training.config import TrainConfig
    from edgecnn.training.trainer import train

    if os.environ.get("EDGECNN_QUIET"):
        set_quiet(True)
    cfg = TrainConfig(**json.loads(Path(request).read_text(encoding="utf-8")))
    try:
        result = train(cfg)
    except EdgeCNNError as exc:
        write_json(Path(answer), {"error": str(exc), "kind": type(exc).__name__})
        return 1
    write_json(Path(answer), {"run_dir": str(result.run_dir), "model_path": str(result.model_path),
                              "history": result.history})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
