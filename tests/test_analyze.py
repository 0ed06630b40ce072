"""`tandem analyze FILE`: the whole pipeline on one recording, real processes and sockets."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import random
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

from daemon.publishing.progress import show_progress
from tests.conftest import ROOT
from tests.support.av_clips import black_and_silence
from tests.support.media import encode_clip
from tests.support.schemas import validate

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
        [sys.executable, "-m", "daemon.cli.tandem", "analyze", *args],
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


def corrupted(path: Path, container: str | None) -> Path:
    """A real H.264 clip with 200-byte runs of random bytes written over its middle half."""
    encode_clip(path, seconds=4.0, audio=False, container=container)
    data = bytearray(path.read_bytes())
    rng = random.Random(3)
    for start in range(len(data) // 4, 3 * len(data) // 4, len(data) // 20):
        data[start : start + 200] = rng.randbytes(200)
    path.write_bytes(bytes(data))
    return path


def test_damage_is_counted_and_shown_and_no_bar_when_piped(tmp_path: Path) -> None:
    """Bytes overwritten in an MP4 fail to decode; in MPEG-TS the demuxer flags the
    packets corrupt and they are skipped. The summary shows both kinds of damage."""
    mp4 = analyze(str(corrupted(tmp_path / "bad.mp4", None)), "--json")
    assert mp4.returncode == 0, mp4.stderr
    summary = json.loads(mp4.stdout.splitlines()[-1])
    assert summary["decode_errors"] > 0 and summary["corrupt_packets"] == 0, summary
    assert "%|" not in mp4.stderr and "s media" not in mp4.stderr  # piped: no bar

    ts = analyze(str(corrupted(tmp_path / "bad.ts", "mpegts")))
    assert ts.returncode == 0, ts.stderr
    last = ts.stdout.splitlines()[-1]
    assert re.search(r"damage: \d+ decode errors, [1-9]\d* corrupt packets skipped", last), last
    assert "%|" not in ts.stderr


def test_a_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    assert show_progress("auto", io.StringIO()) is False
    assert show_progress("always", io.StringIO()) and not show_progress("never", sys.stderr)
    clip = encode_clip(tmp_path / "clip.mp4", seconds=3.0, audio=False)
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the terminal's last writer closed it
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.cli.tandem", "analyze", str(clip)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
        timeout=120,
    )
    os.close(terminal)
    reader.join(10)
    os.close(controller)
    shown = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, shown
    assert re.search(r"clip: +\d+%\|", shown) and "s media" in shown, shown
    assert "100%" in shown or "3.0/3.0 s media" in shown, shown
    assert "Traceback" not in shown


def test_summary_has_tracks_zone_and_line_counts_and_snapshot_paths(tmp_path: Path) -> None:
    from tests.support.scene_clips import shapes_clip

    clip = shapes_clip(tmp_path / "yard.mp4")
    config = tmp_path / "scene.toml"
    config.write_text("""
[[streams]]
id = "any"
url = "ignored: analyze takes the file"
fps = 5
track = ["motion"]
zones = [{name = "left", polygon = [[0, 0], [0.5, 0], [0.5, 1], [0, 1]], anchor = "center"}]
lines = [{name = "middle", a = [0.5, 0], b = [0.5, 1], anchor = "center"}]
[workers.vision]
count = 1
analyzers = ["motion"]
[workers.audio]
count = 0
analyzers = ["level"]
""")
    snapshots = tmp_path / "pictures"
    proc = analyze(str(clip), "--config", str(config), "--json", "--snapshots", str(snapshots))
    assert proc.returncode == 0, proc.stderr
    [summary] = [m for m in map(json.loads, proc.stdout.splitlines()) if m["type"] == "summary"]
    assert [t["label"] for t in summary["tracks"]] == ["motion", "motion"]
    assert summary["lines"] == {"middle": {"in": 1, "out": 1}}
    assert summary["zones"] == {"left": {"most_at_once": {"motion": 1}, "entries": 2}}
    assert summary["transcript"] is None  # no transcribe analyzer
    # Two zone entries, two exits, two crossings: a picture each, where the summary says.
    assert len(summary["snapshots"]) == 6
    assert all(Path(p).parent.parent == snapshots and Path(p).stat().st_size > 0
               for p in summary["snapshots"])  # fmt: skip
    text = analyze(str(clip), "--config", str(config))
    assert "tracks: 2 motion, line middle: 1 in, 1 out, zone left: 2 entries" in text.stdout
