"""docs/results.md shows one example per topic, and each is a valid message of the schema
the code generates (docs/schema/)."""

from __future__ import annotations

import json
import re

from tests.conftest import ROOT
from tests.support.schemas import validate

TOPICS = {"fused", "detections", "event", "snapshot", "status", "correction"}


def test_every_topic_has_a_valid_example() -> None:
    text = (ROOT / "docs" / "results.md").read_text()
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]
    messages = [m for m in examples if isinstance(m, dict) and "type" in m]
    for message in messages:
        validate(message["type"], message)
    assert {m["type"] for m in messages} >= TOPICS
