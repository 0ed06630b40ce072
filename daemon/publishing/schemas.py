"""JSON Schemas of the typed records, generated from daemon/publishing/records.py.

`python -m daemon.publishing.schemas [DIR]` writes them (default docs/schema/); a test
checks that the committed files are what this writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from daemon.publishing.records import Detections

GENERATED: dict[str, tuple[type[msgspec.Struct], str]] = {
    "detections": (Detections, "tandem per-item record (topic detections.<stream>), schema 1"),
}


def schema(kind: str) -> dict[str, Any]:
    struct, title = GENERATED[kind]
    out: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://tandem.invalid/schema/{kind}.schema.json",
        "title": title,
    }
    generated = msgspec.json.schema(struct)
    for definition in generated.get("$defs", {}).values():
        # Every field is always sent (defaults included), so every field is required.
        definition["required"] = sorted(definition.get("properties", {}))
    return out | generated


def render(kind: str) -> str:
    return json.dumps(schema(kind), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0] if args else "docs/schema")
    for kind in GENERATED:
        path = directory / f"{kind}.schema.json"
        path.write_text(render(kind))
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
