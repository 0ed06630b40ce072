"""Model-backed analyzers: tiny random-weight DETR, RT-DETR, YOLOS, ViT, CLIP and SigLIP
models saved with save_pretrained and loaded by path through the code the worker uses
(registry.build), giving schema-valid results; no downloads; the motion gate, of whole
frames and of regions."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import torch
from prometheus_client import CollectorRegistry
from transformers import AutoTokenizer

from daemon.workers.analyzers import WorkItem, build, spec_for
from daemon.workers.analyzers.hf import ModelLoadError
from daemon.workers.batching import BatchRunner
from daemon.workers.device import make_runtime
from daemon.workers.metrics import WorkerMetrics
from tests.support.media import moving_square
from tests.support.tiny_vision_models import (
    save_sentencepiece_tokenizer,
    tiny_clip,
    tiny_detr,
    tiny_rtdetr,
    tiny_siglip,
    tiny_vit,
    tiny_yolos,
)

BUILDERS = {
    "detr": tiny_detr,
    "rtdetr": tiny_rtdetr,
    "yolos": tiny_yolos,
    "vit": tiny_vit,
    "clip": tiny_clip,
    "siglip": tiny_siglip,
}
ANALYZER = {"detr": "objects", "rtdetr": "objects", "yolos": "objects", "vit": "classes"}
ANALYZER |= {"clip": "zeroshot", "siglip": "zeroshot"}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {kind: build_model(root / kind) for kind, build_model in BUILDERS.items()}


def frames(n: int, stream: str = "s", start: int = 0, still: bool = False) -> list[WorkItem]:
    return [
        WorkItem(
            stream,
            "video",
            seq,
            seq * 0.2,
            torch.from_numpy(moving_square(0 if still else seq * 5, 320, 240)),
            duration=0.2,
        )
        for seq in range(start, start + n)
    ]


OPTIONS: dict[str, dict[str, Any]] = {
    "objects": {"threshold": 0.0, "count_labels": ["person", "car"]},
    "classes": {"top_k": 2},
    "zeroshot": {"labels": ["person", "empty room", "car"]},
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(BUILDERS))
def test_tiny_model_by_path_gives_schema_valid_results(kind: str, models: dict[str, Path]) -> None:
    name = ANALYZER[kind]
    options = {name: {"model": str(models[kind]), **OPTIONS[name]}}
    (analyzer,) = build([name], "video", options)
    batch = frames(3, "a") + frames(2, "b")
    outputs = analyzer.analyze_batch(batch)  # type: ignore[attr-defined]
    assert len(outputs) == 5
    schema = spec_for(name, "video").output_schema()
    for out in outputs:
        jsonschema.validate(out, schema)
        assert out["gated"] is False
    # One item alone gives what it gave inside the batch (the batch is really batched).
    alone = analyzer.analyze(batch[4])
    assert alone.keys() == outputs[4].keys()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["detr", "rtdetr", "yolos"])
def test_detector_outputs(kind: str, models: dict[str, Path]) -> None:
    options = {"objects": {"model": str(models[kind]), **OPTIONS["objects"]}}
    (detector,) = build(["objects"], "video", options)
    out = detector.analyze(frames(1)[0])
    assert out["count"] == 10  # threshold 0 keeps every query of the tiny model
    assert set(out["labels"]) <= {"person", "car", "dog"}
    assert out["scores"] == sorted(out["scores"], reverse=True)
    assert all(0 <= s <= 1 for s in out["scores"])
    assert out["count_person"] == out["labels"].count("person")
    assert all(0 <= v <= 1 for box in out["boxes"] for v in box)
    assert out["region"] is None  # the whole frame


@pytest.mark.slow
def test_detector_scores_each_kind_of_head(models: dict[str, Path]) -> None:
    """DETR and YOLOS: a softmax with a "no object" class left out, so a query's best
    class scores under its share of 1; RT-DETR: a sigmoid per class, no such class."""
    for kind, sigmoid in [("detr", False), ("yolos", False), ("rtdetr", True)]:
        options = {"objects": {"model": str(models[kind]), "threshold": 0.0}}
        (detector,) = build(["objects"], "video", options)
        with torch.inference_mode():
            pixels = detector.prep([frames(1)[0].tensor], detector.size)
            logits = detector.model(pixel_values=pixels).logits.float()
        assert logits.shape[-1] == 3 + (0 if sigmoid else 1), kind
        want = logits.sigmoid() if sigmoid else logits.softmax(dim=-1)[..., :3]
        got = detector.analyze(frames(1)[0])
        # abs=1e-3: two float32 forwards may reduce in another order on another CPU.
        assert got["scores"][0] == pytest.approx(float(want.max()), abs=1e-3), kind


def test_rtdetr_pixels_are_not_normalized(models: dict[str, Path]) -> None:
    (detector,) = build(["objects"], "video", {"objects": {"model": str(models["rtdetr"])}})
    white = torch.full((96, 96, 3), 255, dtype=torch.uint8)
    assert torch.allclose(detector.prep([white], detector.size), torch.ones(1, 3, 96, 96))


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_zero_shot_scores_every_label(kind: str, models: dict[str, Path]) -> None:
    options = {"zeroshot": {"model": str(models[kind]), **OPTIONS["zeroshot"]}}
    (zeroshot,) = build(["zeroshot"], "video", options)
    out = zeroshot.analyze(frames(1)[0])
    probs = [out["p_person"], out["p_empty_room"], out["p_car"]]
    if kind == "clip":  # a softmax over the labels
        assert sum(probs) == pytest.approx(1.0, abs=1e-3)
    else:  # SigLIP: a sigmoid per label, independent of the others
        assert all(0 < p < 1 for p in probs)
    assert out["label"] in {"person", "empty room", "car"}
    assert out["score"] == max(probs)


def test_siglip_prompts_are_padded_and_cut_to_its_length(models: dict[str, Path]) -> None:
    """SigLIP pools at the last position: every prompt fills its 16 positions, and a
    prompt longer than that is cut rather than failing."""
    labels = ["car", "a person standing by a parked car in the rain"]
    options = {"zeroshot": {"model": str(models["siglip"]), "labels": labels}}
    (zeroshot,) = build(["zeroshot"], "video", options)
    assert zeroshot.text.shape[0] == 2
    out = zeroshot.analyze(frames(1)[0])
    jsonschema.validate(out, spec_for("zeroshot", "video").output_schema())


def test_siglip_with_its_own_sentencepiece_tokenizer(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """SigLIP checkpoints name SiglipTokenizer (SentencePiece): such a model folder, with a
    spiece.model trained here, loads through the worker and answers per label."""
    model = tmp_path / "siglip"
    shutil.copytree(models["siglip"], model)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (model / name).unlink(missing_ok=True)
    save_sentencepiece_tokenizer(model, vocab_size=30)  # the tiny model has 37 token ids
    assert type(AutoTokenizer.from_pretrained(model)).__name__ == "SiglipTokenizer"
    labels = ["car", "a person standing by a parked car in the rain"]
    options = {"zeroshot": {"model": str(model), "labels": labels}}
    (zeroshot,) = build(["zeroshot"], "video", options)
    out = zeroshot.analyze(frames(1)[0])
    jsonschema.validate(out, spec_for("zeroshot", "video").output_schema())
    assert set(out) >= {"p_car", "p_a_person_standing_by_a_parked_car_in_the_rain"}


def test_nothing_is_downloaded_unless_allowed() -> None:
    with pytest.raises(ModelLoadError, match="allow_download = false"):
        build(["objects"], "video", {"objects": {"model": "tandem-tests/no-such-model"}})


def test_bad_model_option_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"objects\.threshold"):
        build(["objects"], "video", {"objects": {"model": "x", "threshold": 2}})
    with pytest.raises(ValueError, match=r"zeroshot\.labels"):
        build(["zeroshot"], "video", {"zeroshot": {"model": "x", "labels": []}})


def test_motion_gate_spends_forwards_only_on_change(models: dict[str, Path]) -> None:
    options = {"objects": {"model": str(models["detr"]), "gate": "motion", "threshold": 0.0}}
    (detector,) = build(["objects"], "video", options)
    still = frames(4, "still", still=True)
    moving = frames(4, "moving")
    batch = [x for pair in zip(still, moving, strict=True) for x in pair]
    out = detector.analyze_batch(batch)  # type: ignore[attr-defined]
    gated = [o["gated"] for o in out]
    # still: the first frame runs, the next three repeat it; moving: every frame runs.
    assert gated == [False, False, True, False, True, False, True, False]
    assert out[2] == {**out[0], "gated": True}


W, H = 320, 240


def square_at(x: int, y: int, side: int = 20, background: int = 96) -> torch.Tensor:
    """A white square on grey; corners on multiples of 4, where the gate samples."""
    image = np.full((H, W, 3), background, dtype=np.uint8)
    image[y : y + side, x : x + side] = 255
    return torch.from_numpy(image)


def items_of(tensors: list[torch.Tensor], stream: str = "r") -> list[WorkItem]:
    return [WorkItem(stream, "video", i, i * 0.2, t, duration=0.2) for i, t in enumerate(tensors)]


def region_detector(models: dict[str, Path]) -> Any:
    options = {"model": str(models["detr"]), "gate": "motion_regions", "threshold": 0.0}
    options |= {"count_labels": ["car"]}
    (detector,) = build(["objects"], "video", {"objects": {**options, "max_detections": 300}})
    return detector


def test_region_gate_shows_the_model_the_changed_region(models: dict[str, Path]) -> None:
    """A small square moves on a still background: the first frame runs whole, the next
    on a crop around the square's old and new places (boxes mapped back to the frame),
    a still frame is gated, and a frame that changes all over runs whole again."""
    detector = region_detector(models)
    still = square_at(48, 40)
    frames_ = [square_at(40, 40), still, still, square_at(40, 40, background=160)]
    first, moved, gated, changed = detector.analyze_batch(items_of(frames_))
    schema = spec_for("objects", "video").output_schema()
    for out in (first, moved, gated, changed):
        jsonschema.validate(out, schema)
    assert first["region"] is None and changed["region"] is None
    assert (moved["gated"], gated["gated"], changed["gated"]) == (False, True, False)
    assert gated == {**moved, "gated": True}

    # The changed pixels were x 40..68, y 40..60; the region is at least a quarter of
    # each side, around them, with the frame's aspect ratio.
    x0, y0, x1, y1 = moved["region"]
    assert x0 * W <= 40 and x1 * W >= 68 and y0 * H <= 40 and y1 * H >= 60
    assert (x1 - x0) == pytest.approx(y1 - y0, abs=0.01) and 0.25 <= x1 - x0 < 0.5

    # What the model found in the crop, mapped into the frame by hand.
    left, top, right, bottom = round(x0 * W), round(y0 * H), round(x1 * W), round(y1 * H)
    with torch.inference_mode():
        (in_crop,) = detector.forward([still[top:bottom, left:right]])
    sx, sy = (right - left) / W, (bottom - top) / H
    mapped = [
        [x0 + b[0] * sx, y0 + b[1] * sy, x0 + b[2] * sx, y0 + b[3] * sy] for b in in_crop["boxes"]
    ]
    found = dict(zip(map(tuple, moved["boxes"]), moved["scores"], strict=True))
    for box, score in zip(mapped, in_crop["scores"], strict=True):
        # 1e-3: float32 forwards of the crop, in another order on another CPU.
        near = [b for b in found if max(abs(u - v) for u, v in zip(b, box, strict=True)) < 1e-3]
        assert near and found[near[0]] == pytest.approx(score, abs=1e-3)
        assert (
            x0 - 1e-4 <= box[0] <= box[2] <= x1 + 1e-4
            and y0 - 1e-4 <= box[1] <= box[3] <= y1 + 1e-4
        )
    # The rest: the first frame's detections that lie wholly outside the region.
    outside = [b for b in first["boxes"] if b[2] <= x0 or b[0] >= x1 or b[3] <= y0 or b[1] >= y1]
    assert moved["count"] == in_crop["count"] + len(outside) == len(moved["boxes"])
    assert all(tuple(b) in found for b in outside)


def test_region_result_keeps_the_last_detections_outside_the_region(
    models: dict[str, Path],
) -> None:
    """Outside the region nothing changed: what the model saw there last still stands;
    what it saw inside the region is replaced by what it sees there now."""
    detector = region_detector(models)
    last = {
        "labels": ["car", "dog"],
        "scores": [0.99, 0.98],
        "boxes": [[0.7, 0.7, 0.9, 0.9], [0.1, 0.1, 0.2, 0.2]],  # outside, inside
    }
    with torch.inference_mode():
        out = detector.forward_region(square_at(48, 40), (0, 0, 96, 72), last)
    assert out["region"] == [0.0, 0.0, 0.3, 0.3]
    assert out["labels"][0] == "car" and out["boxes"][0] == [0.7, 0.7, 0.9, 0.9]
    assert out["count"] == 11  # the car and the tiny model's 10 queries in the region
    assert all(b[2] <= 0.3 and b[3] <= 0.3 for b in out["boxes"][1:])
    assert out["count_car"] == out["labels"].count("car")


def test_region_gate_counts_the_frames_and_pixels_saved(models: dict[str, Path]) -> None:
    detector = region_detector(models)
    metrics = WorkerMetrics(CollectorRegistry())
    runner = BatchRunner([detector], make_runtime("cpu"), metrics)
    still = square_at(48, 40)
    answers = runner.run(items_of([square_at(40, 40), still, still]))
    region = answers[1].outputs["objects"]["region"]
    assert isinstance(region, list)
    x0, y0, x1, y1 = region

    def sample(name: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"analyzer": "objects"})

    assert sample("tandem_worker_region_frames_total") == 1
    assert sample("tandem_worker_gated_frames_total") == 1
    saved = sample("tandem_worker_region_pixels_saved_total")
    assert saved == pytest.approx(W * H * (1 - (x1 - x0) * (y1 - y0)), abs=W * H * 1e-3)


def test_regions_are_for_detectors_only(models: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match=r"classes\.gate"):
        build(["classes"], "video", {"classes": {"model": "x", "gate": "motion_regions"}})
