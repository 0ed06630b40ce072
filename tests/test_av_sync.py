"""A/V offset from co-occurring onsets: flash and beep clips through a real tandemd."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.av_clips import flashes_and_beeps
from tests.support.schemas import validate

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
        [sys.executable, "-m", "daemon.cli.tandem", *command],
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


def test_onset_analyzer_finds_beeps_within_10_ms(tmp_path: Path) -> None:
    from daemon.workers.analyzers.onset import OnsetAnalyzer
    from tests.support.audio_media import Part, chunks, feed, synthesize, write_wav

    # Beeps at 0.73 s, 2.0 s (across a chunk edge: 1.99-2.09), 3.41 s on digital silence
    # and, at 4.5 s, a tone rising out of quiet noise.
    parts = [Part(0.73), Part(0.1, 1000, 0.5), Part(1.16), Part(0.1, 1000, 0.5), Part(1.31),
             Part(0.1, 700, 0.3), Part(0.99), Part(0.5, 0, 0.001), Part(0.5, 440, 0.5)]  # fmt: skip
    path = write_wav(tmp_path / "beeps.wav", synthesize(parts))
    outs = feed(OnsetAnalyzer(), chunks(path))
    found = [t for o in outs for t in o["onsets"]]  # type: ignore[union-attr]
    assert found == pytest.approx([0.73, 1.99, 3.40, 4.99], abs=0.01)
    assert sum(o["count"] for o in outs) == 4  # type: ignore[misc]
