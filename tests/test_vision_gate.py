"""The motion gate around faces, persons and plugins that declare it (gated.py), on real
H.264 clips decoded as the worker sees them: a still clip runs the detector on the first
frame and at each refresh only; a change in part of the frame runs it on that region,
its boxes land where the face or person is drawn, what lies outside is kept from the
last result; frames that run give the ungated detector's results; every gated and
region frame is counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import cv2
import jsonschema
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers import AnalyzerSpec, WorkItem, build, spec_for
from daemon.workers.analyzers.gate_options import GateOptions
from daemon.workers.analyzers.registry import specs
from daemon.workers.batching import BatchRunner
from daemon.workers.device import make_runtime
from daemon.workers.metrics import WorkerMetrics
from tests.support.vision_clips import encode, face, faces_and_persons_frame, items, person

FPS = 10
W, H = 640, 360
STEP_PX = 4  # the moving face or person moves this many pixels a frame from t = 1 s
# Where each clip draws its still subject and, from t = 1 s, its moving one (centre x).
STILL_X = {"faces": 150, "persons": 130}
MOVING_X0 = {"faces": 440, "persons": 420}
PERSONS = {"scale": 1.05}  # HOG's default step: the drawn people are found on every frame


def moving_x(name: str, i: int) -> int:
    return MOVING_X0[name] + STEP_PX * (i - FPS)


def faces_frame(i: int) -> np.ndarray:
    """A still face on the left; from 1 s a second face moving right on the right."""
    image = np.full((H, W, 3), 90, np.uint8)
    face(image, STILL_X["faces"], 180, 120)
    if i >= FPS:
        face(image, moving_x("faces", i), 170, 100)
    return cv2.GaussianBlur(image, (5, 5), 0)


def persons_frame(i: int) -> np.ndarray:
    """A person standing on the left; from 1 s a smaller one walking right on the right."""
    image = np.full((H, W, 3), 180, np.uint8)
    person(image, STILL_X["persons"], 60, 240)
    if i >= FPS:
        person(image, moving_x("persons", i), 150, 160)
    return cv2.GaussianBlur(image, (5, 5), 0)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("gate")
    still = {"faces": faces_and_persons_frame(0), "persons": faces_and_persons_frame(FPS)}
    return {
        "still-faces": encode(d / "still-faces.mp4", 40, lambda i: still["faces"], fps=FPS),
        "still-persons": encode(d / "still-persons.mp4", 40, lambda i: still["persons"], fps=FPS),
        "faces": encode(d / "faces.mp4", 30, faces_frame, fps=FPS),
        "persons": encode(d / "persons.mp4", 30, persons_frame, fps=FPS),
    }


def analyzer(name: str, **gate: Any) -> Any:
    options = PERSONS if name == "persons" else {}
    return build([name], "video", {name: {**options, **gate}})[0]


def outputs(analyzer_: Any, path: Path) -> list[tuple[WorkItem, dict[str, Any]]]:
    return [(item, analyzer_.analyze(item)) for item in items(path)]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["faces", "persons"])
def test_a_still_clip_runs_the_detector_only_first_and_at_each_refresh(
    name: str, clips: dict[str, Path]
) -> None:
    """4 s of one still picture (H.264, a keyframe every second, whose small changes are
    no motion): the detector runs at 0, 1.5 and 3.0 s (refresh 1.5 s); every other frame
    repeats the last result marked gated; the frames that run equal the ungated run."""
    gated = outputs(analyzer(name, gate="motion", gate_refresh_s=1.5), clips[f"still-{name}"])
    plain = outputs(analyzer(name), clips[f"still-{name}"])
    ran = [item.pts for item, out in gated if out["gated"] is False]
    assert ran == pytest.approx([0.0, 1.5, 3.0])
    schema = spec_for(name, "video").output_schema()
    last: dict[str, Any] = {}
    for (_, out), (_, ref) in zip(gated, plain, strict=True):
        jsonschema.validate(out, schema)
        if out["gated"] is False:
            assert out == ref  # the same detector on the same frame
            last = out
        else:
            assert out == {**last, "gated": True}
    assert all(out["count"] == 2 for _, out in gated)


def _inside(box: list[float], x: float, y: float) -> bool:
    return box[0] < x < box[2] and box[1] < y < box[3]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["faces", "persons"])
def test_a_change_in_part_of_the_frame_runs_the_detector_on_that_region(
    name: str, clips: dict[str, Path]
) -> None:
    """From 1 s a face (a person) moves on the right while one stays still on the left:
    each such frame runs on a region around the mover only; its box lands where it is
    drawn, in frame coordinates; the still one's box is the first frame's, kept; counts
    and boxes are the ungated detector's on the whole frame (boxes within 3% of a side:
    the detector's scan grid falls differently on a crop)."""
    gated = outputs(analyzer(name, gate="motion_regions", gate_refresh_s=10), clips[name])
    plain = outputs(analyzer(name), clips[name])
    first = gated[0][1]
    assert first["region"] is None and first["count"] == 1
    still_box = first["boxes"][0]
    assert _inside(still_box, STILL_X[name] / W, 0.5)
    schema = spec_for(name, "video").output_schema()
    moving = [(i, item, out) for i, (item, out) in enumerate(gated) if i >= FPS]
    for i, item, out in moving:
        jsonschema.validate(out, schema)
        assert out["gated"] is False and out["region"] is not None, item.pts
        x0, _, x1, _ = out["region"]
        assert x0 > still_box[2] and x1 - x0 < 0.75  # the mover's part only
        assert out["count"] == 2 and still_box in out["boxes"]  # kept as last seen
        (box,) = [b for b in out["boxes"] if b != still_box]
        assert _inside(box, moving_x(name, i) / W, 0.5)
        assert x0 <= box[0] <= box[2] <= x1
        ref = plain[i][1]
        assert ref["count"] == 2
        for ours, theirs in zip(sorted(out["boxes"]), sorted(ref["boxes"]), strict=True):
            assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) < 0.03


def test_gated_and_region_frames_are_counted(clips: dict[str, Path]) -> None:
    faces = analyzer("faces", gate="motion_regions", gate_refresh_s=10)
    metrics = WorkerMetrics(CollectorRegistry())
    runner = BatchRunner([faces], make_runtime("cpu"), metrics)
    answers = [runner.run([item])[0].outputs["faces"] for item in items(clips["faces"])]

    def sample(name: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"analyzer": "faces"})

    regions = [a["region"] for a in answers if a["region"] is not None]
    unseen = sum(W * H * (1 - (r[2] - r[0]) * (r[3] - r[1])) for r in regions)  # type: ignore[index,operator]
    assert sample("tandem_worker_gated_frames_total") == sum(a["gated"] is True for a in answers)
    assert sample("tandem_worker_gated_frames_total") == FPS - 1  # the still first second
    assert sample("tandem_worker_region_frames_total") == len(regions) == len(answers) - FPS
    assert sample("tandem_worker_region_pixels_saved_total") == pytest.approx(unseen, rel=1e-3)


# A plugin that declares the gate: its options derive from GateOptions.
class BlobOptions(GateOptions):
    regions: ClassVar[bool] = True
    max_boxes: int = 8


class BlobAnalyzer:
    """Bright blobs (luma over 200) as boxes, largest first."""

    name: ClassVar[str] = "blobs"
    modality: ClassVar[str] = "video"
    calls = 0

    def __init__(self, options: BlobOptions) -> None:
        self.options = options

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        BlobAnalyzer.calls += 1
        gray = cv2.cvtColor(item.tensor.numpy(), cv2.COLOR_RGB2GRAY)
        contours, _ = cv2.findContours(
            (gray > 200).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        rects = sorted((cv2.boundingRect(c) for c in contours), key=lambda r: -r[2] * r[3])
        h, w = gray.shape
        boxes: list[JsonValue] = [
            [round(x / w, 4), round(y / h, 4), round((x + bw) / w, 4), round((y + bh) / h, 4)]
            for x, y, bw, bh in rects
        ]
        return {"count": len(rects), "boxes": boxes}


BLOBS = AnalyzerSpec(
    "blobs",
    "video",
    "tests.test_vision_gate:BlobAnalyzer",
    BlobOptions,
    outputs={"count": "integer", "boxes": "array", "region": "array?", "gated": "boolean"},
)


def blob_frame(i: int) -> np.ndarray:
    """A still bright square at the left; from frame 3 a second one moving right."""
    image = np.full((H, W, 3), 60, np.uint8)
    image[100:140, 40:80] = 255
    if i >= 3:
        x = 400 + 8 * (i - 3)
        image[200:240, x : x + 40] = 255
    return image


def test_a_plugin_that_declares_the_gate_options_is_gated(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(specs(), "blobs", BLOBS)
    clip = encode(tmp_path / "blobs.mp4", 8, blob_frame, fps=FPS)
    (blobs,) = build(["blobs"], "video", {"blobs": {"gate": "motion_regions"}})
    BlobAnalyzer.calls = 0
    out = [blobs.analyze(item) for item in items(clip)]
    assert BlobAnalyzer.calls == 6  # frames 0 and 3..7; 1 and 2 are still
    assert [o["gated"] for o in out] == [False, True, True] + [False] * 5
    for i, o in enumerate(out[3:], start=3):
        jsonschema.validate(o, BLOBS.output_schema())
        assert o["count"] == 2 and o["region"] is not None
        still = out[0]["boxes"][0]
        assert still in o["boxes"]  # kept from the last result: nothing changed there
        (moved,) = [b for b in o["boxes"] if b != still]
        assert _inside(moved, (400 + 8 * (i - 3) + 20) / W, 220 / H)


def test_only_box_analyzers_take_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    class FrameOptions(GateOptions):
        pass

    spec = AnalyzerSpec("framewise", "video", "tests.test_vision_gate:BlobAnalyzer", FrameOptions)
    monkeypatch.setitem(specs(), "framewise", spec)
    with pytest.raises(ValueError, match=r"framewise\.gate: .*box analyzers only"):
        build(["framewise"], "video", {"framewise": {"gate": "motion_regions"}})
    build(["faces", "persons"], "video", {"faces": {"gate": "motion_regions"}})


def test_the_shipped_config_gates_faces_and_persons() -> None:
    """On by default: config.toml puts both detectors behind the region gate with a
    refresh of a few seconds (tracks are confirmed by the second sighting) and camera
    motion compensated."""
    from daemon.config import load_config
    from daemon.workers.analyzers import validate_options

    vision = load_config(Path(__file__).parent.parent / "config.toml").workers.vision
    for name in ("faces", "persons"):
        assert name in vision.analyzers
        options = validate_options(name, "video", vision.options.get(name, {}))
        assert isinstance(options, GateOptions)
        assert options.gate == "motion_regions" and 2.0 <= options.gate_refresh_s <= 5.0
        assert options.gate_camera_motion is True
