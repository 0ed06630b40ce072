"""The JSON Schemas of typed records are generated from the code's record types: the
committed files in docs/schema/ are exactly what the generator writes, and allow the
fields a newer tandemd may add."""

from __future__ import annotations

import jsonschema
import pytest

from daemon.publishing.schemas import GENERATED, render
from tests.support.blocked_imports import runs_without
from tests.support.schemas import SCHEMAS, validate


def test_committed_schemas_match_the_record_types() -> None:
    for kind in GENERATED:
        committed = (SCHEMAS / f"{kind}.schema.json").read_text()
        assert committed == render(kind), (
            f"docs/schema/{kind}.schema.json is stale: run python -m daemon.publishing.schemas"
        )


def test_the_subscriber_side_imports_without_torch_transformers_or_opencv() -> None:
    code = "import daemon.publishing.subscriber, daemon.publishing.records\nprint('ok')\n"
    out = runs_without(("torch", "transformers", "cv2", "torchaudio"), code)
    assert out.stdout.strip() == "ok", out.stderr


def test_the_schemas_allow_fields_a_newer_tandemd_adds_and_the_tests_do_not() -> None:
    """Consumers validate with the published schemas as they are, so a newer tandemd's
    optional fields pass; the tests hold this version's records to exactly its fields."""
    window = {"start": 12.0, "end": 13.0, "wall_start": None, "wall_end": None}
    fused = {"schema": 3, "type": "fused", "stream": "cam1", "window": window, "missing": [],
             "partial": False, "latency_s": 0.1, "published_at": 1.0, "events": [],
             "av_sync": None, "video": None, "audio": None}  # fmt: skip
    validate("fused", fused)
    for newer in ({**fused, "mood": "calm"}, {**fused, "window": {**window, "frames": 25}}):
        validate("fused", newer, closed=False)
        with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
            validate("fused", newer)
    with pytest.raises(jsonschema.ValidationError):  # still checked: types, required fields
        validate("fused", {**fused, "partial": "no", "mood": "calm"}, closed=False)
