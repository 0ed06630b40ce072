"""Event edges of the built-in detectors at the shipped analysis rate (5 fps, 0.5 s audio
chunks), on a clip with known truth (tests/support/edge_clips.py), against the truth and FFmpeg's
freezedetect: a still picture through a keyframe is one frozen event, and the ends of
motion and clipping lie where the signal changed, not at the next frame or chunk."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.config import load_config
from daemon.fusion.events import EventEngine
from daemon.wire.protocol import PROTOCOL_VERSION, Result
from daemon.workers.analyzers import build
from daemon.workers.analyzers.intervals import Interval, runs
from daemon.workers.analyzers.specs import FrozenOptions
from tests.conftest import ROOT
from tests.support.audio_media import chunks, need
from tests.support.edge_clips import CLIPPED, SECONDS, STILL, still_then_moving
from tests.support.vision_clips import items
from tests.test_events_e2e import shipped_rules

TOLERANCE_S = 0.3
FRAME_S = 0.2  # the shipped 5 fps: a boundary placed by frames alone can be this late
RULES = ("motion", "frozen", "clipping")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return still_then_moving(tmp_path_factory.mktemp("edges") / "edges.mkv")


def freezedetect(clip: Path, noise: float) -> list[Interval]:
    done = subprocess.run(
        [need("ffmpeg"), "-hide_banner", "-nostats", "-i", str(clip), "-an",
         "-vf", f"freezedetect=n={noise}:d=2", "-f", "null", "-"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    starts = [float(t) for t in re.findall(r"freeze_start: ([\d.]+)", done.stderr)]
    ends = [float(t) for t in re.findall(r"freeze_end: ([\d.]+)", done.stderr)]
    return [Interval(a, b) for a, b in zip(starts, ends, strict=True)]


def result(modality: str, seq: int, pts: float, outputs: dict[str, Any]) -> Result:
    return Result(
        v=PROTOCOL_VERSION, stream="s", modality=modality,  # type: ignore[arg-type]
        seq=seq, pts=pts, wall=time.time(), outputs=outputs, infer_s=0.0,
    )  # fmt: skip


def video_results(clip: Path) -> list[Result]:
    """Motion and frozen on every fifth frame (5 fps of 25), as a vision worker gives them."""
    analyzers = build(["motion", "frozen"], "video")
    return [
        result("video", i.seq, i.pts, {a.name: a.analyze(i) for a in analyzers})
        for i in items(clip, every=5)
    ]


def audio_results(clip: Path) -> list[Result]:
    [clipping] = build(["clipping"], "audio")
    return [result("audio", c.seq, c.pts, {"clipping": clipping.analyze(c)}) for c in chunks(clip)]


def events(results: list[Result]) -> dict[str, list[Interval]]:
    """The shipped rules' events over the results in media order, ended at the clip's end."""
    rules = [r for r in load_config(ROOT / "config.toml").events if r.name in RULES]
    engine = EventEngine("s", rules)
    for r in sorted(results, key=lambda r: r.pts):
        engine.step(r)
    engine.close(SECONDS)
    found: dict[str, list[Interval]] = {name: [] for name in RULES}
    for m in engine.take():
        if m["edge"] == "end":
            found[m["name"]].append(Interval(m["start"], m["end"]))
    return found


def near(got: list[Interval], want: list[Interval], tolerance_s: float = TOLERANCE_S) -> bool:
    return len(got) == len(want) and all(
        abs(a.start - b.start) <= tolerance_s and abs(a.end - b.end) <= tolerance_s
        for a, b in zip(got, want, strict=True)
    )


def test_a_keyframe_in_a_still_picture_is_noise_not_motion(clip: Path) -> None:
    frames = video_results(clip)
    keyframe = next(r for r in frames if r.pts == pytest.approx(6.0))
    # Measured: the keyframe's re-quantisation is above freezedetect's default noise
    # (0.001) and below the analyzer's.
    assert 0.001 < keyframe.outputs["frozen"]["mafd"] < FrozenOptions().noise
    truth = [Interval(*STILL)]
    ours = runs([(r.pts, r.outputs["frozen"]["since"]) for r in frames], SECONDS, 2.0)
    reference = freezedetect(clip, FrozenOptions().noise)
    assert near(ours, truth) and near(reference, truth), (ours, reference)
    assert near(events(frames)["frozen"], reference), events(frames)


def test_motion_ends_where_the_picture_stopped(clip: Path) -> None:
    motion = events(video_results(clip))["motion"]
    assert near(motion, [Interval(0.0, STILL[0]), Interval(STILL[1], SECONDS)]), motion
    # Placed at the first still frame, not at the next one that showed it was still.
    assert abs(motion[0].end - STILL[0]) < FRAME_S, motion
    # The still part is where freezedetect sees a freeze.
    still = [Interval(motion[0].end, motion[1].start)]
    assert near(still, freezedetect(clip, FrozenOptions().noise)), motion


def test_clipping_edges_lie_inside_their_chunks(clip: Path) -> None:
    results = audio_results(clip)
    starts = [t for r in results for t in r.outputs["clipping"]["clipping_starts"]]
    ends = [t for r in results for t in r.outputs["clipping"]["clipping_ends"]]
    assert starts == [pytest.approx(CLIPPED[0], abs=0.005)]
    assert ends == [pytest.approx(CLIPPED[1], abs=0.005)]
    [event] = events(results)["clipping"]
    assert (event.start, event.end) == pytest.approx(CLIPPED, abs=0.01)


@pytest.mark.slow
def test_the_whole_pipeline_places_the_edges(clip: Path, tmp_path: Path) -> None:
    """`tandem analyze --json` with the shipped rules: real ingest, workers and fusion."""
    config = tmp_path / "edges.toml"
    config.write_text(
        '[workers.vision]\ncount = 1\nanalyzers = ["motion", "frozen"]\n'
        '[workers.audio]\ncount = 1\nanalyzers = ["level", "clipping"]\n'
        + "".join(shipped_rules(RULES))
    )
    done = subprocess.run(
        [sys.executable, "-m", "daemon.cli.tandem", "analyze", str(clip), "--config", str(config),
         "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    messages = [json.loads(line) for line in done.stdout.splitlines()]
    found: dict[str, list[Interval]] = {name: [] for name in RULES}
    for m in messages:
        if m["type"] == "event" and m["edge"] == "end":
            found[m["name"]].append(Interval(m["start"], m["end"]))
    reference = freezedetect(clip, FrozenOptions().noise)
    assert near(found["frozen"], [Interval(*STILL)]) and near(found["frozen"], reference), found
    assert near(found["motion"], [Interval(0.0, STILL[0]), Interval(STILL[1], SECONDS)]), found
    assert abs(found["motion"][0].end - STILL[0]) < FRAME_S, found
    assert near(found["clipping"], [Interval(*CLIPPED)], tolerance_s=0.01), found
