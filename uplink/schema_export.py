"""Generate the JSON Schema files in uplink/schema/ from the pydantic models.

The models are the source of truth; the files are for people and for non-Python consumers.
Regenerate after changing a model:  python -m uplink.schema_export
(tests/uplink/test_schema.py fails while the committed files differ from the generated ones).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from uplink.messages import (
    CameraStatus,
    CameraStatusV1,
    ConfigMessage,
    IncidentMessage,
    IncidentMessageV1,
    IncidentMessageV2,
    NodeHealth,
    NodeHealthV1,
    NodeHealthV2,
    NodeHealthV3,
    StoredAck,
    WireModel,
    ZonesReport,
)

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"

# file name -> model; the number in the name is the `schema` version it describes
MODELS: dict[str, type[WireModel]] = {
    "incident-1.json": IncidentMessageV1,  # still accepted by the ingest
    "incident-2.json": IncidentMessageV2,  # still accepted by the ingest
    "incident-3.json": IncidentMessage,
    "config-1.json": ConfigMessage,
    "health-1.json": NodeHealthV1,  # still accepted by the ingest
    "health-2.json": NodeHealthV2,  # still accepted by the ingest
    "health-3.json": NodeHealthV3,  # still accepted by the ingest
    "health-4.json": NodeHealth,
    "camera-status-1.json": CameraStatusV1,  # still accepted by the ingest
    "camera-status-2.json": CameraStatus,
    "ack-1.json": StoredAck,
    "zones-1.json": ZonesReport,
}


def generate() -> dict[str, str]:
    files = {}
    for name, model in MODELS.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        document = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": model.model_fields["schema_"].default,
            **schema,
        }
        files[name] = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return files


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generate().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        sys.stdout.write(f"wrote {path}\n")
