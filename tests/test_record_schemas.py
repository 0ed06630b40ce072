"""The JSON Schemas of typed records are generated from the code's record types: the
committed files in docs/schema/ are exactly what the generator writes."""

from __future__ import annotations

import subprocess
import sys

from daemon.publishing.schemas import GENERATED, render
from tests.conftest import ROOT
from tests.support.schemas import SCHEMAS


def test_committed_schemas_match_the_record_types() -> None:
    for kind in GENERATED:
        committed = (SCHEMAS / f"{kind}.schema.json").read_text()
        assert committed == render(kind), (
            f"docs/schema/{kind}.schema.json is stale: run python -m daemon.publishing.schemas"
        )


def test_the_subscriber_side_imports_without_torch_transformers_or_opencv() -> None:
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'transformers', 'cv2', 'torchaudio'):\n"
        "            raise ImportError(f'blocked: {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import daemon.publishing.subscriber, daemon.publishing.records\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", blocker], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "ok", out.stderr
