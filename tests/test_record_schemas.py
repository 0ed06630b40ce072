"""The JSON Schemas of typed records are generated from the code's record types: the
committed files in docs/schema/ are exactly what the generator writes."""

from __future__ import annotations

from daemon.publishing.schemas import GENERATED, render
from tests.support.blocked_imports import runs_without
from tests.support.schemas import SCHEMAS


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
