"""JSON Schemas of the published records, generated from daemon/publishing/records.py.

`python -m daemon.publishing.schemas [DIR]` writes them (default docs/schema/); a test
checks that the committed files are what this writes, and the tests validate every
message they receive against them (closed: only the fields this version declares).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from daemon.publishing import records

# file name (docs/schema/<name>.schema.json) -> the record type(s) on that topic, title
GENERATED: dict[str, tuple[Any, str]] = {
    "fused-record": (records.Fused, "tandem fused record (topic fused.<stream>), schema 3"),
    "detections": (records.Detections, "tandem per-item record (topic detections.<stream>)"),
    "event": (records.Event, "tandem event (topic event.<stream>), schema 1"),
    "status": (
        records.Status | records.AnalysisRate,
        "tandem stream status (topic status.<stream>), schema 1",
    ),
    "correction": (records.Correction, "tandem correction (topic correction.<stream>)"),
    "snapshot": (
        records.Snapshot,
        "tandem snapshot header (topic snapshot.<stream>: [topic, this, JPEG bytes])",
    ),
}


# The record types ignore fields they do not declare, so these schemas allow them (no
# additionalProperties false): what a consumer validates a received record with.
COMPATIBILITY = (
    "A newer tandemd may add optional fields, at any depth, within the same schema number: "
    "ignore the properties you do not know (docs/results.md, Compatibility)."
)


def schema(name: str) -> dict[str, Any]:
    kind, title = GENERATED[name]
    generated = msgspec.json.schema(kind)
    for def_name, definition in generated.get("$defs", {}).items():
        struct = getattr(records, def_name)
        definition["required"] = sorted(_always_sent(struct))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://tandem.invalid/schema/{name}.schema.json",
        "title": title,
        "$comment": COMPATIBILITY,
    } | generated


def _always_sent(struct: type[msgspec.Struct]) -> list[str]:
    """Every field is encoded, defaults included, but those defaulting to UNSET."""
    return [
        field.encode_name
        for field in msgspec.structs.fields(struct)
        if field.default is not msgspec.UNSET
    ]


def render(name: str) -> str:
    return json.dumps(schema(name), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0] if args else "docs/schema")
    for name in GENERATED:
        path = directory / f"{name}.schema.json"
        path.write_text(render(name))
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
