"""Model-backed analyzers: tiny random-weight DETR, ViT and CLIP models saved with
save_pretrained and loaded by path through the code the worker uses (registry.build),
giving schema-valid results; no downloads; the motion gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import torch

from daemon.workers.analyzers import WorkItem, build, spec_for
from daemon.workers.analyzers.hf import ModelLoadError
from tests.media import moving_square
from tests.tiny_vision_models import tiny_clip, tiny_detr, tiny_vit


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "objects": tiny_detr(root / "detr"),
        "classes": tiny_vit(root / "vit"),
        "zeroshot": tiny_clip(root / "clip"),
    }


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


@pytest.mark.parametrize("name", ["objects", "classes", "zeroshot"])
def test_tiny_model_by_path_gives_schema_valid_results(name: str, models: dict[str, Path]) -> None:
    options = {name: {"model": str(models[name]), **OPTIONS[name]}}
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


def test_detector_outputs(models: dict[str, Path]) -> None:
    options = {"objects": {"model": str(models["objects"]), **OPTIONS["objects"]}}
    (detector,) = build(["objects"], "video", options)
    out = detector.analyze(frames(1)[0])
    assert out["count"] == 10  # threshold 0 keeps every query of the tiny model
    assert set(out["labels"]) <= {"person", "car", "dog"}
    assert out["scores"] == sorted(out["scores"], reverse=True)
    assert out["count_person"] == out["labels"].count("person")
    assert all(0 <= v <= 1 for box in out["boxes"] for v in box)


def test_zero_shot_scores_every_label(models: dict[str, Path]) -> None:
    options = {"zeroshot": {"model": str(models["zeroshot"]), **OPTIONS["zeroshot"]}}
    (zeroshot,) = build(["zeroshot"], "video", options)
    out = zeroshot.analyze(frames(1)[0])
    probs = [out["p_person"], out["p_empty_room"], out["p_car"]]
    assert sum(probs) == pytest.approx(1.0, abs=1e-3)  # CLIP: softmax over the labels
    assert out["label"] in {"person", "empty room", "car"}
    assert out["score"] == max(probs)


def test_nothing_is_downloaded_unless_allowed() -> None:
    with pytest.raises(ModelLoadError, match="allow_download = false"):
        build(["objects"], "video", {"objects": {"model": "tandem-tests/no-such-model"}})


def test_bad_model_option_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"objects\.threshold"):
        build(["objects"], "video", {"objects": {"model": "x", "threshold": 2}})
    with pytest.raises(ValueError, match=r"zeroshot\.labels"):
        build(["zeroshot"], "video", {"zeroshot": {"model": "x", "labels": []}})


def test_motion_gate_spends_forwards_only_on_change(models: dict[str, Path]) -> None:
    options = {"objects": {"model": str(models["objects"]), "gate": "motion", "threshold": 0.0}}
    (detector,) = build(["objects"], "video", options)
    still = frames(4, "still", still=True)
    moving = frames(4, "moving")
    batch = [x for pair in zip(still, moving, strict=True) for x in pair]
    out = detector.analyze_batch(batch)  # type: ignore[attr-defined]
    gated = [o["gated"] for o in out]
    # still: the first frame runs, the next three repeat it; moving: every frame runs.
    assert gated == [False, False, True, False, True, False, True, False]
    assert out[2] == {**out[0], "gated": True}
