"""``edgecnn station init``: a commented example station file that checks and runs as written (synthetic sources)."""

from __future__ import annotations

import os
from pathlib import Path

EXAMPLE = """\
# edgecnn station file: `edgecnn station check {file}` checks it, `edgecnn station run {file}` runs it.
# Editors validate it against `edgecnn station schema` (JSON Schema). Paths are relative to this file.
# Secrets are never written here: write "{{ENV_NAME}}" and set ENV_NAME in the environment (the unit's
# EnvironmentFile), e.g. source = "rtsp://op:{{CAM1_PASSWORD}}@10.0.0.5/stream".

name = "line1"                     # used in MQTT topics, OPC UA nodes and the unit's name
model = {model:<27}# the artifact; or profile = "deploy.json" from `edgecnn bench --pick`
# device = "rpi5"                  # a device profile (edgecnn devices list)
# state_dir = "line1.state"        # sequence numbers and spools (default: NAME.state beside this file)

[run]                              # any `edgecnn run` option; command-line flags still win
threads = 2
# save_jsonl = "rows.jsonl"        # one row per region per frame, and one per decision
# save_csv = "rows.csv"

[[sources]]                        # each source on its own reader; the newest frame wins
name = "cam1"
source = "synthetic:10:320x240"    # an rtsp/http URL, a video, /dev/video0 (or camera = 0), a GStreamer pipeline
# width = 1280                     # capture settings of this source
# height = 720
# fps = 15

[[sources.regions]]                # optional: without regions the whole frame is classified
name = "left"
box = [0.0, 0.0, 0.5, 1.0]         # [x0, y0, x1, y1]: numbers in 0..1 are fractions, integers are pixels

[[sources.regions]]
name = "right"
box = [0.5, 0.0, 1.0, 1.0]

[[sources]]
name = "cam2"
source = "synthetic:5:160x120"

[rules]
threshold = 0.5                    # top-1 below this is "unsure"
# thresholds = {{ ng = 0.7 }}        # per class
votes = 3                          # a verdict changes when 3 ...
window = 5                         # ... of the last 5 frames agree (per source and region)
reject = {reject:<26}# labels that mean reject
verdict = "any"                    # station rejects when any region rejects ("all", or "at_least" with at_least = N)
unsure = "wait"                    # an unsure region keeps the station unsure ("ok", "reject")
latch_s = 2.0                      # a reject is held 2 s after the last rejecting frame
hold_s = 0.0                       # a region's verdict stays at least this long
emit = "change"                    # outputs get changed verdicts ("every": every frame)

# [[outputs]]                      # kind = mqtt | opcua | modbus | gpio | webhook, and that kind's fields
# kind = "mqtt"
# host = "broker.local"
# username = "line1"
# password = "{{MQTT_PASSWORD}}"

# [serve]                          # edgecnn station run serves the live view, /metrics and /healthz
# port = 8080
"""


def example_text(model: str = "model_int8.tflite", reject: str = "ng", file: str = "station.toml") -> str:
    """The example station file for ``model``, with ``reject`` as the reject label (both written as TOML strings,
    so a quote or backslash in them stays a valid file; the comments stay aligned)."""
    import json

    return EXAMPLE.format(model=json.dumps(model, ensure_ascii=False) + " ",
                          reject="[" + json.dumps(reject, ensure_ascii=False) + "] ", file=file)




def write_example(path: str | os.PathLike[str], model: str = "model_int8.tflite", reject: str = "ng") -> Path:
    """Write the example to ``path`` (atomically; an existing file is never replaced).

    Raises:
        ArtifactExistsError: ``path`` exists.
    """
    from edgecnn.errors import ArtifactExistsError
    from edgecnn.fileio import write_text

    out = Path(path)
    if out.exists():
        raise ArtifactExistsError(f"{out} exists; give another file name (station init never replaces a file).")
    write_text(out, example_text(model, reject, out.name))
    return out


__all__ = ["EXAMPLE", "example_text", "write_example"]
