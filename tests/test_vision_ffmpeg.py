"""Black, frozen, scene and motion analyzers on a clip with known truth, against the
truth and against FFmpeg's own blackdetect, freezedetect and scdet on the same clip."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from daemon.workers.analyzers import build
from daemon.workers.analyzers.intervals import Interval, flag_runs, runs
from daemon.workers.analyzers.specs import FrozenOptions
from tests.support.vision_clips import FPS, TRUTH, truth_clip
from tests.support.vision_clips import items as clip_items

TOLERANCE_S = 0.2
END = TRUTH[-1][1]
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return truth_clip(tmp_path_factory.mktemp("vision") / "truth.mp4")


def analyse(clip: Path, every: int = 1) -> list[tuple[float, dict[str, Any]]]:
    """Every analyzer's outputs per frame, in order, as a worker would produce them."""
    analyzers = build(["black", "frozen", "scene", "motion"], "video")
    return [
        (item.pts, {a.name: a.analyze(item) for a in analyzers})
        for item in clip_items(clip, every=every)
    ]


def ffmpeg_log(clip: Path) -> str:
    noise = FrozenOptions().noise  # freezedetect with our analyzer's noise tolerance
    graph = f"blackdetect=d=2:pix_th=0.10:pic_th=0.98,freezedetect=n={noise}:d=2,scdet=t=10"
    done = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-nostats",
            "-i",
            str(clip),
            "-vf",
            graph,
            "-an",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr


def ffmpeg_black(log: str) -> list[Interval]:
    found = re.findall(r"black_start:([\d.]+) black_end:([\d.]+)", log)
    return [Interval(float(a), float(b)) for a, b in found]


def ffmpeg_freezes(log: str) -> list[Interval]:
    starts = [float(s) for s in re.findall(r"freeze_start: ([\d.]+)", log)]
    ends = [float(s) for s in re.findall(r"freeze_end: ([\d.]+)", log)]
    ends += [END] * (len(starts) - len(ends))  # a freeze still open at the end of the clip
    return [Interval(a, b) for a, b in zip(starts, ends, strict=True)]


def ffmpeg_cuts(log: str) -> list[float]:
    return [float(t) for t in re.findall(r"lavfi\.scd\.time: ([\d.]+)", log)]


def assert_same(ours: list[Interval], reference: list[Interval]) -> None:
    assert len(ours) == len(reference), (ours, reference)
    for a, b in zip(ours, reference, strict=True):
        assert abs(a.start - b.start) <= TOLERANCE_S, (a, b)
        assert abs(a.end - b.end) <= TOLERANCE_S, (a, b)


def black_intervals(frames: list[tuple[float, dict[str, Any]]]) -> list[Interval]:
    return runs([(t, o["black"]["since"]) for t, o in frames], END, min_duration_s=2.0)


def frozen_intervals(frames: list[tuple[float, dict[str, Any]]]) -> list[Interval]:
    return runs([(t, o["frozen"]["since"]) for t, o in frames], END, min_duration_s=2.0)


def motion_intervals(frames: list[tuple[float, dict[str, Any]]]) -> list[Interval]:
    return flag_runs([(t, o["motion"]["moving"]) for t, o in frames], END, min_duration_s=0.5)


def test_intervals_match_the_known_truth(clip: Path) -> None:
    frames = analyse(clip)
    assert_same(black_intervals(frames), [Interval(3.0, 6.0)])
    # The black segment is also still: freezedetect reports it too.
    assert_same(frozen_intervals(frames), [Interval(3.0, 6.0), Interval(9.0, 12.4)])
    assert_same(motion_intervals(frames), [Interval(0, 3), Interval(6, 9), Interval(12.4, 15)])
    cuts = [t for t, o in frames if o["scene"]["scene_change"]]
    # Into black, out of black, and the cut at 13.6 s; nothing inside the moving parts.
    assert [round(t, 2) for t in cuts] == [3.0, 6.0, 13.6]


@needs_ffmpeg
def test_black_and_frozen_agree_with_ffmpeg(clip: Path) -> None:
    log = ffmpeg_log(clip)
    frames = analyse(clip)
    assert ffmpeg_black(log), "blackdetect found nothing: the reference is broken"
    assert_same(black_intervals(frames), ffmpeg_black(log))
    assert_same(frozen_intervals(frames), ffmpeg_freezes(log))


@needs_ffmpeg
def test_motion_is_where_ffmpeg_sees_no_freeze(clip: Path) -> None:
    freezes = ffmpeg_freezes(ffmpeg_log(clip))
    gaps, at = [], 0.0
    for freeze in freezes:
        gaps.append(Interval(at, freeze.start))
        at = freeze.end
    gaps.append(Interval(at, END))
    assert_same(motion_intervals(analyse(clip)), gaps)


@needs_ffmpeg
def test_scene_changes_agree_with_scdet(clip: Path) -> None:
    reference = ffmpeg_cuts(ffmpeg_log(clip))
    ours = [t for t, o in analyse(clip) if o["scene"]["scene_change"]]
    assert len(ours) == len(reference) == 3
    for a, b in zip(ours, reference, strict=True):
        assert abs(a - b) <= 1 / FPS


@needs_ffmpeg
def test_intervals_at_ten_fps_analysis_agree_with_ffmpeg(clip: Path) -> None:
    """At a 10 fps analysis rate boundaries are quantized to 0.1 s: still within 0.2 s."""
    log = ffmpeg_log(clip)
    frames = analyse(clip, every=round(FPS / 10))
    assert_same(black_intervals(frames), ffmpeg_black(log))
    assert_same(frozen_intervals(frames), ffmpeg_freezes(log))


def test_confirmed_only_after_the_minimum_duration(clip: Path) -> None:
    frames = analyse(clip)
    confirmed = [t for t, o in frames if o["black"]["confirmed"]]
    assert confirmed[0] == pytest.approx(3.0 + 2.0 - 1 / FPS, abs=1e-6)
    assert confirmed[-1] == pytest.approx(6.0 - 1 / FPS, abs=1e-6)
    frozen = [t for t, o in frames if o["frozen"]["confirmed"]]
    assert min(frozen) == pytest.approx(5.0, abs=1e-6)
    assert all(3.0 <= t < 6.0 or 9.0 <= t < 12.4 for t in frozen)
