"""A/V offset from co-occurring onsets: flash and beep clips through a real tandemd."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.av_clips import flashes_and_beeps
from tests.conftest import ROOT
from tests.schemas import validate

pytestmark = pytest.mark.slow

CONFIG = """
[[streams]]
id = "ignored"
url = "x"
fps = 25
width = 160
height = 120
[workers.vision]
count = 1
analyzers = ["motion"]
[workers.audio]
count = 1
analyzers = ["level", "onset"]
"""


@pytest.mark.parametrize("late_s", [0.3, 0.0])
def test_audio_late_by_300_ms_is_measured_within_40_ms(tmp_path: Path, late_s: float) -> None:
    clip = flashes_and_beeps(tmp_path / "sync.mp4", audio_late_s=late_s)
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    command = ["analyze", str(clip), "--config", str(config), "--json"]
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.cli", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    records = [m for m in lines if m["type"] == "fused"]
    for record in records:
        validate("fused", record)
    [summary] = [m for m in lines if m["type"] == "summary"]
    sync = summary["av_offset"]
    assert sync is not None, proc.stdout[-2000:]
    assert sync["offset_s"] == pytest.approx(late_s, abs=0.04)
    assert sync["pairs"] >= 5 and sync["confidence"] >= 0.8
    assert records[-1]["av_sync"] == sync  # published in the fused records too
