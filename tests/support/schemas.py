"""Validate published messages against the JSON Schema files in docs/schema/.

The published schemas let a record carry fields they do not list (a newer tandemd may add
optional ones; docs/results.md, Compatibility). What this version sends must have exactly
its declared fields, so validate() closes every record object of the schema first
(`additionalProperties: false`); `closed=False` validates as a consumer would.
"""

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
def _validator(kind: str, closed: bool) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{FILES[kind]}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(_closed(schema) if closed else schema)


def _closed(node: Any) -> Any:
    """`node` with every object that lists its properties refusing any other."""
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _closed(value) for key, value in node.items()}
    if "properties" in node and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


def validate(kind: str, message: dict[str, Any], closed: bool = True) -> None:
    """Raise jsonschema.ValidationError unless `message` is a valid `kind` message."""
    _validator(kind, closed).validate(message)


def validate_published(topic: str, message: dict[str, Any]) -> None:
    """A message as received: its topic names its type and stream."""
    assert topic == f"{message['type']}.{message['stream']}", topic
    validate(message["type"], {k: v for k, v in message.items() if k != "jpeg"})
