"""`tandem analyze FILE`: the whole pipeline on one recording, real processes and sockets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.av_clips import black_and_silence
from tests.conftest import ROOT
from tests.schemas import validate

pytestmark = pytest.mark.slow

CONFIG = """
[workers.vision]
count = 1
analyzers = ["motion", "black"]
[workers.audio]
count = 1
analyzers = ["level", "silence"]
[[events]]
name = "signal_loss"
min_duration_s = 2.0
when = {all = [{analyzer = "black", output = "black", op = "is_true"},
               {analyzer = "silence", output = "silent", op = "is_true"}]}
"""


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", "analyze", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_analyze_prints_every_record_and_event_and_a_summary(tmp_path: Path) -> None:
    clip = black_and_silence(tmp_path / "clip 1.mp4", black=(2.0, 5.0), silence=(2.0, 5.0))
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    proc = analyze(str(clip), "--config", str(config), "--json")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    records = [m for m in lines if m["type"] == "fused"]
    events = [m for m in lines if m["type"] == "event"]
    [summary] = [m for m in lines if m["type"] == "summary"]
    for message in records + events:
        validate(message["type"], message)
    assert [r["window"]["start"] for r in records] == [float(i) for i in range(len(records))]
    assert all(not r["partial"] for r in records), "a file waits for every result"
    assert [(e["edge"], e["start"], e["end"]) for e in events] == [
        ("start", pytest.approx(2.0, abs=0.3), None),
        ("end", pytest.approx(2.0, abs=0.3), pytest.approx(5.0, abs=0.3)),
    ]
    assert summary["stream"] == "clip_1"
    assert summary["frames"] == 50  # 10 s at the default 5 fps: nothing dropped
    assert summary["windows"] == len(records) and summary["decode_errors"] == 0
    assert summary["events"] == {"signal_loss": 1}


@pytest.mark.parametrize("content", [None, b"not a video at all\n" * 100])
def test_analyze_refuses_what_is_not_media_in_one_line(tmp_path: Path, content: bytes | None):
    path = tmp_path / "broken.mp4"
    if content is not None:
        path.write_bytes(content)
    proc = analyze(str(path))
    assert proc.returncode == 1
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"tandem: {path}: cannot analyze: ")
    assert proc.stdout == ""
