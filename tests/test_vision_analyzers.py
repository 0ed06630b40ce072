"""Blur, faces, persons and motion boxes on generated clips with known truth; stateful
analyzers across gaps and streams; every built-in's outputs against its output schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import jsonschema
import numpy as np
import pytest
import torch

from daemon.workers.analyzers import WorkItem, build, spec_for
from daemon.workers.analyzers.blur import BlurAnalyzer
from daemon.workers.analyzers.frozen import FrozenAnalyzer
from daemon.workers.analyzers.motion import MotionAnalyzer
from daemon.workers.analyzers.pixels import luma
from daemon.workers.analyzers.state import PerStream
from tests.support.media import moving_square
from tests.support.vision_clips import encode, faces_and_persons_frame, items, texture

FRAME_ANALYZERS = ["motion", "black", "frozen", "scene", "blur", "faces", "persons"]


def item(image: np.ndarray, seq: int, pts: float, stream: str = "s") -> WorkItem:
    return WorkItem(stream, "video", seq, pts, torch.from_numpy(image), duration=0.2)


@pytest.fixture(scope="module")
def blur_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of a sharp texture, then 2 s of the same texture blurred (sigma 3)."""
    sharp = texture()
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3)
    path = tmp_path_factory.mktemp("blur") / "blur.mp4"
    return encode(path, 40, lambda i: sharp if i < 20 else blurred, fps=10)


@pytest.fixture(scope="module")
def people_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("people") / "people.mp4"
    return encode(path, 30, faces_and_persons_frame, fps=10)


def test_blur_flags_exactly_the_blurred_part(blur_clip: Path) -> None:
    blur = BlurAnalyzer()
    flags = [(it.pts, blur.analyze(it)) for it in items(blur_clip)]
    assert [o["blurry"] for _, o in flags] == [t >= 2.0 for t, _ in flags]
    sharp, soft = flags[0][1]["sharpness"], flags[-1][1]["sharpness"]
    assert sharp > 10 * soft


def test_sharpness_is_opencvs_laplacian_variance() -> None:
    image = texture()
    y = luma(image).astype(np.float64)
    # Same kernel as ours (ksize=1); compare away from the border, where padding differs.
    reference = cv2.Laplacian(y, cv2.CV_64F, ksize=1)[1:-1, 1:-1].var()
    ours = BlurAnalyzer().analyze(item(image, 0, 0.0))["sharpness"]
    assert ours == pytest.approx(reference, rel=1e-3)  # float32 sums against float64


def test_faces_found_where_they_were_drawn(people_clip: Path) -> None:
    faces = build(["faces"], "video")[0]
    out = [(it.pts, faces.analyze(it)) for it in items(people_clip)]
    assert [o["count"] for t, o in out if t < 1.0] == [2] * 10
    assert all(o["count"] == 0 for t, o in out if t >= 2.0)
    x0, y0, x1, y1 = out[0][1]["boxes"][0]  # the larger face, drawn around (200, 180)
    assert x0 < 200 / 640 < x1 and y0 < 180 / 360 < y1


@pytest.mark.slow
def test_persons_found_where_they_were_drawn(people_clip: Path) -> None:
    persons = build(["persons"], "video")[0]
    out = [(it.pts, persons.analyze(it)) for it in items(people_clip)]
    assert all(o["count"] >= 1 for t, o in out if 1.0 <= t < 2.0)
    assert sum(o["count"] for t, o in out if 1.0 <= t < 2.0) >= 15  # both, most frames
    assert all(o["count"] == 0 for t, o in out if t >= 2.0)
    centres = sorted((b[0] + b[2]) / 2 * 640 for t, o in out if 1.0 <= t < 2.0 for b in o["boxes"])
    assert abs(centres[0] - 200) < 40 and abs(centres[-1] - 450) < 40


def test_motion_boxes_surround_the_moving_square() -> None:
    motion = MotionAnalyzer()
    motion.analyze(item(moving_square(0, 320, 240), 0, 0.0))
    out = motion.analyze(item(moving_square(10, 320, 240), 1, 0.2))
    # The 60 px square moved from x 0..60 to x 40..100 (y 90..150): what changed is the
    # strip it left (x 0..40) and the strip it entered (x 60..100), on an 8 px grid.
    left, right = sorted(out["boxes"])
    assert left[0] == 0 and 40 / 320 <= left[2] <= 48 / 320
    assert 56 / 320 <= right[0] <= 60 / 320 and 100 / 320 <= right[2] <= 104 / 320
    for box in (left, right):
        assert 88 / 240 <= box[1] <= 90 / 240 and 150 / 240 <= box[3] <= 152 / 240


def test_frozen_resets_on_a_gap_and_keeps_streams_apart() -> None:
    frozen = FrozenAnalyzer()
    still = moving_square(0, 320, 240)
    assert frozen.analyze(item(still, 0, 0.0))["mafd"] is None
    assert frozen.analyze(item(still, 1, 0.2))["frozen"] is True
    assert frozen.analyze(item(still, 0, 0.0, stream="other"))["mafd"] is None
    after_gap = frozen.analyze(item(still, 2, 5.0))  # 4.8 s later: no reference any more
    assert after_gap == {
        "frozen": False,
        "mafd": None,
        "since": None,
        "run_s": 0.0,
        "confirmed": False,
    }
    assert frozen.analyze(item(still, 3, 5.2))["since"] == 5.0


def test_per_stream_state_is_bounded() -> None:
    state: PerStream[int] = PerStream(limit=3)
    for n in range(10):
        state.put(f"s{n}", n)
    assert [state.get(f"s{n}") for n in range(10)] == [None] * 7 + [7, 8, 9]


@pytest.mark.parametrize("name", FRAME_ANALYZERS)
def test_outputs_match_the_output_schema(name: str, people_clip: Path) -> None:
    analyzer = build([name], "video")[0]
    schema = spec_for(name, "video").output_schema()
    outputs: list[dict[str, Any]] = [analyzer.analyze(it) for it in items(people_clip, every=5)]
    for out in outputs:
        jsonschema.validate(out, schema)
    assert len(outputs) == 6
