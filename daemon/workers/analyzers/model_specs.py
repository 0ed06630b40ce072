"""Specs and options of the model-backed analyzers (Hugging Face transformers). No torch
or transformers imported here: config validation imports this module."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, field_validator

from daemon.workers.analyzers.base import AnalyzerSpec
from daemon.workers.analyzers.gate_options import GateOptions


def slug(label: str) -> str:
    """A label as part of an output name: "traffic light" -> "traffic_light"."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


class ModelOptions(GateOptions):
    # A local directory saved with save_pretrained, or a hub id already in the local
    # Hugging Face cache. Nothing is downloaded unless allow_download is true.
    model: str = Field(min_length=1)
    revision: str | None = None
    allow_download: bool = False

    @field_validator("gate_camera_motion")
    @classmethod
    def _no_camera_motion(cls, on: bool) -> bool:
        # The batched model path (model_base.py) searches one region per frame: it does
        # not carry boxes along with a moving picture.
        if on:
            raise ValueError("gate_camera_motion is for faces, persons and plugins, not models")
        return on


class DetectorOptions(ModelOptions):
    regions: ClassVar[bool] = True
    threshold: float = Field(0.5, ge=0, le=1)  # detections scoring below are dropped
    max_detections: int = Field(20, ge=0, le=300)
    size: tuple[int, int] | None = None  # model input (height, width); None: keep the frame's
    count_labels: list[str] = Field(default_factory=list)  # adds count_<label> outputs

    @field_validator("count_labels")
    @classmethod
    def _sluggable(cls, labels: list[str]) -> list[str]:
        for label in labels:
            if not slug(label):
                raise ValueError(f"label {label!r} has no letters or digits")
        return labels


class ClassifierOptions(ModelOptions):
    top_k: int = Field(3, ge=1, le=20)


class ZeroShotOptions(ModelOptions):
    labels: list[str] = Field(min_length=1, max_length=256)
    template: str = "a photo of a {}."  # each label is put in here before encoding

    @field_validator("labels")
    @classmethod
    def _distinct_slugs(cls, labels: list[str]) -> list[str]:
        slugs = [slug(label) for label in labels]
        if "" in slugs or len(set(slugs)) != len(slugs):
            raise ValueError("labels must be distinct and have letters or digits")
        return labels


MODEL_SPECS = [
    AnalyzerSpec(
        "objects",
        "video",
        "daemon.workers.analyzers.detector:DetectorAnalyzer",
        DetectorOptions,
        "object detection with a transformers model (DETR, RT-DETR, YOLOS)",
        device="accelerator",
        outputs={
            "count": "integer",
            "labels": "array",
            "scores": "array",
            "boxes": "array",
            "count_*": "integer",
            "region": "array?",  # [x0, y0, x1, y1] in 0..1 that the model saw; null: all
            "gated": "boolean",
        },
    ),
    AnalyzerSpec(
        "classes",
        "video",
        "daemon.workers.analyzers.image_classes:ClassifierAnalyzer",
        ClassifierOptions,
        "image classification with a transformers model (ViT, ConvNeXt, ...)",
        device="accelerator",
        outputs={
            "label": "string",
            "score": "number",
            "top_labels": "array",
            "top_scores": "array",
            "gated": "boolean",
        },
    ),
    AnalyzerSpec(
        "zeroshot",
        "video",
        "daemon.workers.analyzers.zeroshot:ZeroShotAnalyzer",
        ZeroShotOptions,
        "zero-shot labels from config with CLIP or SigLIP",
        device="accelerator",
        outputs={"label": "string", "score": "number", "p_*": "number", "gated": "boolean"},
    ),
]
