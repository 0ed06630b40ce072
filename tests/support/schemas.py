"""Validate published messages against the JSON Schema files in docs/schema/."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schema"
FILES = {
    "fused": "fused-record",
    "event": "event",
    "status": "status",
    "correction": "correction",
    "detections": "detections",
    "snapshot": "snapshot",
    "analysis_rate": "status",  # the status topic's other message
}


@cache
def _validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{FILES[kind]}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate(kind: str, message: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError unless `message` is a valid `kind` message."""
    _validator(kind).validate(message)


def validate_published(topic: str, message: dict[str, Any]) -> None:
    """A message as received: its topic names its type and stream."""
    assert topic == f"{message['type']}.{message['stream']}", topic
    validate(message["type"], {k: v for k, v in message.items() if k != "jpeg"})
