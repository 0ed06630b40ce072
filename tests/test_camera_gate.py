"""The motion gate with camera motion on (gate.py, gated.py), on a real H.264 clip of a
panning camera decoded as the worker sees it: a textured room panned 4 pixels a frame,
a person standing in it (moving with the picture), one walking against the pan, and one
the pan brings in at the right edge. Each frame is searched only where something moved
against the picture and at the uncovered edge, and finds what the ungated detector
finds on the whole frame; the picture's shift is estimated despite the walker; a zoom or
a change of light runs the whole frame; the saving is counted; bad settings name the
key."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import cv2
import jsonschema
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from daemon.config import ConfigError, parse_config
from daemon.workers.analyzers import WorkItem, build, spec_for
from daemon.workers.analyzers.gate import Picture, picture_of, picture_shift
from daemon.workers.batching import BatchRunner
from daemon.workers.device import make_runtime
from daemon.workers.metrics import WorkerMetrics
from tests.support.vision_clips import encode, items, person

W, H, FPS, FRAMES = 640, 360, 10, 30
PAN = 4  # pixels a frame the picture moves left (the camera pans right)
WALK = 4  # pixels a frame the walker moves right in the picture
PERSONS = {"scale": 1.05}  # HOG's default step: the drawn people are found on every frame
CAMERA = {"gate": "motion_regions", "gate_refresh_s": 10.0, "gate_camera_motion": True}


def room() -> np.ndarray:
    """The room the camera pans across, wider than the frame: a lit wall with shelves
    and pictures, a floor, a person standing at x = 250 and one at x = 680 (out of the
    first frame)."""
    rng = np.random.default_rng(5)
    width = W + PAN * FRAMES + 80
    image = np.empty((H, width, 3), np.uint8)
    image[:] = np.linspace(150, 200, width, dtype=np.float32)[None, :, None].astype(np.uint8)
    image[int(H * 0.85) :] = (150, 140, 130)
    for _ in range(10):
        x, y = int(rng.integers(0, width - 100)), int(rng.integers(0, H // 3))
        w, h = int(rng.integers(30, 90)), int(rng.integers(20, 60))
        colour = tuple(int(c) for c in rng.integers(120, 230, 3))
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, -1)
    person(image, 250, 110, 200)
    person(image, W + 40, 110, 200)
    return image


ROOM = room()


def pan_frame(i: int) -> np.ndarray:
    image = np.ascontiguousarray(ROOM[:, PAN * i : PAN * i + W])
    person(image, 330 + WALK * i, 120, 190)  # walking right, against the pan
    return cv2.GaussianBlur(image, (5, 5), 0)


@pytest.fixture(scope="module")
def pan(tmp_path_factory: pytest.TempPathFactory) -> list[WorkItem]:
    return list(items(encode(tmp_path_factory.mktemp("camera") / "pan.mp4", FRAMES, pan_frame)))


def persons(**gate: Any) -> Any:
    return build(["persons"], "video", {"persons": {**PERSONS, **gate}})[0]


def inside(boxes: list[list[float]]) -> list[list[float]]:
    """The boxes clear of the frame's left and right edges, left to right."""
    return sorted(b for b in boxes if b[0] > 0.02 and b[2] < 0.98)


def area(rects: list[list[float]]) -> float:
    return sum((r[2] - r[0]) * (r[3] - r[1]) for r in rects)


@pytest.mark.slow
def test_a_panning_camera_is_searched_where_something_moved_and_at_the_new_edge(
    pan: list[WorkItem],
) -> None:
    gated, plain = persons(**CAMERA), persons()
    schema = spec_for("persons", "video").output_schema()
    counts: list[tuple[int, int]] = []
    for item in pan:
        ours, theirs = gated.analyze(item), plain.analyze(item)
        jsonschema.validate(ours, schema)
        assert ours["gated"] is False
        if item.seq == 0:
            assert ours["regions"] is None and ours == {**theirs, "gated": False, "regions": None}
            continue
        regions = ours["regions"]
        assert regions is not None, item.seq  # never the whole frame after the first
        assert area(regions) < 0.6, (item.seq, regions)
        assert any(r[2] == 1.0 for r in regions)  # the edge the pan uncovers
        assert ours["region"] == [min(r[0] for r in regions), min(r[1] for r in regions), 1.0,
                                  max(r[3] for r in regions)]  # fmt: skip
        # The same people as the detector on the whole frame, boxes within 5% of a side
        # (the standing one carried along with the picture, the others found again in a
        # crop, where HOG's grid and pyramid fall a step or two differently); one the
        # frame's edge cuts may be found a frame sooner or later.
        ours_whole, theirs_whole = inside(ours["boxes"]), inside(theirs["boxes"])
        assert len(ours_whole) == len(theirs_whole), item.seq
        for a, b in zip(ours_whole, theirs_whole, strict=True):
            assert max(abs(u - v) for u, v in zip(a, b, strict=True)) < 0.05, (item.seq, a, b)
        counts.append((ours["count"], theirs["count"]))
    assert counts[-1] == (3, 3)  # the third came in at the edge
    # Cut or whole, the same people on most frames.
    assert sum(a == b for a, b in counts) >= len(counts) - 2


def test_the_pictures_shift_is_found_despite_a_person_walking_against_it(
    pan: list[WorkItem],
) -> None:
    """Within 0.3 of a pixel of the true pan on every pair of frames: the walker, the
    frame's most contrasty thing, moves 8 pixels a frame against it."""
    pictures: list[Picture] = [picture_of(item, (H // 4, W // 4)) for item in pan]
    for before, now in itertools.pairwise(pictures):
        found = picture_shift(before.edges, now.edges)
        assert found is not None
        scale = W / now.edges.shape[1]
        assert abs(found[0] * scale + PAN) < 0.3 and abs(found[1] * scale) < 0.3, found


def zoom_frame(i: int) -> np.ndarray:
    """The room zooming in 3% a frame about its centre."""
    scale = 1 + 0.03 * i
    view = ROOM[:, 100 : 100 + W]
    m = cv2.getRotationMatrix2D((W / 2, H / 2), 0, scale)
    return cv2.GaussianBlur(cv2.warpAffine(view, m, (W, H)), (5, 5), 0)


def light_frame(i: int) -> np.ndarray:
    """The room still, its light switched up at frame 3."""
    view = ROOM[:, 100 : 100 + W].astype(np.int16) + (60 if i >= 3 else 0)
    return cv2.GaussianBlur(np.clip(view, 0, 255).astype(np.uint8), (5, 5), 0)


@pytest.mark.parametrize("make", [zoom_frame, light_frame], ids=["zoom", "light"])
def test_what_no_shift_explains_runs_the_whole_frame(make: Any, tmp_path: Path) -> None:
    clip = encode(tmp_path / "clip.mp4", 6, make, fps=FPS)
    gated = persons(**CAMERA)
    out = [gated.analyze(item) for item in items(clip)]
    changed = range(1, 6) if make is zoom_frame else [3]
    for i in changed:
        assert out[i]["gated"] is False and out[i]["regions"] is None, i


def test_the_pixels_the_detector_did_not_see_are_counted(pan: list[WorkItem]) -> None:
    gated = persons(**CAMERA)
    metrics = WorkerMetrics(CollectorRegistry())
    runner = BatchRunner([gated], make_runtime("cpu"), metrics)
    answers = [runner.run([item])[0].outputs["persons"] for item in pan[:8]]
    parts = [a["regions"] for a in answers if a["regions"] is not None]
    unseen = sum(round(W * H * (1 - area(p))) for p in parts)  # type: ignore[arg-type]

    def sample(name: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"analyzer": "persons"})

    assert sample("tandem_worker_region_frames_total") == len(parts) == 7
    assert sample("tandem_worker_region_pixels_saved_total") == pytest.approx(unseen, rel=1e-3)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        (
            "persons",
            {"gate_camera_motion": True},
            r"workers\.vision\.options\.persons\.gate_camera_motion: needs gate",
        ),
        (
            "objects",
            {"model": "m", "gate": "motion_regions", "gate_camera_motion": True},
            r"workers\.vision\.options\.objects\.gate_camera_motion.*not models",
        ),
    ],
)
def test_camera_motion_settings_name_the_key(
    name: str, options: dict[str, Any], message: str
) -> None:
    config = {"workers": {"vision": {"analyzers": [name], "options": {name: options}}}}
    with pytest.raises(ConfigError, match=message):
        parse_config(config)
