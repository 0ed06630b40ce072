"""Built-in analyzers on inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from daemon.workers.analyzers import UnknownAnalyzerError, WorkItem, build
from daemon.workers.analyzers.level import LevelAnalyzer
from daemon.workers.analyzers.motion import MotionAnalyzer
from tests.support.media import moving_square


def frame(i: int, seq: int | None = None, stream: str = "s") -> WorkItem:
    image = torch.from_numpy(moving_square(i, 320, 240))
    return WorkItem(stream, "video", seq if seq is not None else i, i / 5, image)


def test_motion_is_none_first_then_the_moving_share() -> None:
    motion = MotionAnalyzer()
    first = motion.analyze(frame(0))
    assert first == {
        "score": None,
        "mean_diff": None,
        "moving": False,
        "boxes": [],
        "still_since": None,
    }
    out = motion.analyze(frame(1))
    # A 60x60 square moved 4 px: two 4x60 strips changed out of 320x240 pixels.
    assert out["score"] == pytest.approx(2 * 4 * 60 / (320 * 240), rel=0.01)
    assert out["moving"] is True
    assert out["still_since"] is None
    still = WorkItem("s", "video", 2, 0.4, frame(1).tensor)
    # Still since the previous frame (0.2 s): the motion stopped there.
    assert motion.analyze(still) == {
        "score": 0.0,
        "mean_diff": 0.0,
        "moving": False,
        "boxes": [],
        "still_since": 0.2,
    }
    again = WorkItem("s", "video", 3, 0.6, frame(1).tensor)
    assert motion.analyze(again)["still_since"] == 0.2


def test_motion_keeps_state_per_stream() -> None:
    motion = MotionAnalyzer()
    motion.analyze(frame(0, stream="a"))
    assert motion.analyze(frame(5, stream="b"))["score"] is None
    assert motion.analyze(frame(1, stream="a"))["score"] > 0


def tone(amplitude: float, n: int = 16000) -> WorkItem:
    t = torch.arange(n) / 16000
    samples = (amplitude * torch.sin(2 * math.pi * 440 * t)).float()
    return WorkItem("s", "audio", 0, 0.0, samples, 16000)


@pytest.mark.parametrize("amplitude", [1.0, 0.5, 0.1])
def test_level_of_a_sine_in_dbfs(amplitude: float) -> None:
    out = LevelAnalyzer().analyze(tone(amplitude))
    assert out["rms_dbfs"] == pytest.approx(20 * math.log10(amplitude / math.sqrt(2)), abs=0.01)
    assert out["peak_dbfs"] == pytest.approx(20 * math.log10(amplitude), abs=0.01)


def test_level_of_digital_silence_is_the_floor() -> None:
    out = LevelAnalyzer().analyze(WorkItem("s", "audio", 0, 0.0, torch.zeros(800), 16000))
    assert out == {"rms_dbfs": -100.0, "peak_dbfs": -100.0}


def test_build_refuses_unknown_or_wrong_modality() -> None:
    assert [a.name for a in build(["motion"], "video")] == ["motion"]
    with pytest.raises(UnknownAnalyzerError, match="unknown audio analyzer 'motion'"):
        build(["motion"], "audio")


def test_numpy_uint8_is_not_widened() -> None:
    # Guards the fast path: absolute difference of uint8 frames without wrap-around.
    a = torch.from_numpy(np.array([[[10, 200, 0]]], np.uint8))
    b = torch.from_numpy(np.array([[[200, 10, 0]]], np.uint8))
    diff = torch.maximum(a, b) - torch.minimum(a, b)
    assert diff.tolist() == [[[190, 190, 0]]]
