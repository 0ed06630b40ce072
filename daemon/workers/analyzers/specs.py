"""Specs, options and output schemas of the built-in analyzers (no torch imported here:
config validation imports this module)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from daemon.workers.analyzers.base import AnalyzerSpec, Options
from daemon.workers.analyzers.model_specs import MODEL_SPECS


class MotionOptions(Options):
    pixel_threshold: int = Field(25, ge=1, le=255)  # a change below this is noise
    max_gap_s: float = Field(2.0, gt=0)  # a previous frame older than this is no reference
    min_score: float = Field(0.0005, ge=0, le=1)  # `moving` when score exceeds this
    cell: int = Field(8, ge=1, le=64)  # boxes are found on a grid of cells this many px wide
    max_boxes: int = Field(8, ge=0, le=64)


class BlackOptions(Options):
    """FFmpeg blackdetect's parameters, same defaults: pix_th, picture_black_ratio_th,
    black_min_duration."""

    pixel_threshold: float = Field(0.10, ge=0, le=1)  # pix_th
    ratio_threshold: float = Field(0.98, ge=0, le=1)  # picture_black_ratio_th
    min_duration_s: float = Field(2.0, ge=0)  # black_min_duration
    max_gap_s: float = Field(2.0, gt=0)


class FrozenOptions(Options):
    """FFmpeg freezedetect's parameters, same defaults: noise (0.001 = -60 dB), duration."""

    noise: float = Field(0.001, ge=0, le=1)
    duration_s: float = Field(2.0, ge=0)
    max_gap_s: float = Field(2.0, gt=0)


class SceneOptions(Options):
    """FFmpeg scdet's threshold, divided by 100 (scdet scores 0..100, we score 0..1)."""

    threshold: float = Field(0.10, ge=0, le=1)
    max_gap_s: float = Field(2.0, gt=0)


class BlurOptions(Options):
    threshold: float = Field(100.0, ge=0)  # `blurry` below this variance of the Laplacian


class FacesOptions(Options):
    cascade: Literal[
        "haarcascade_frontalface_default.xml",
        "haarcascade_frontalface_alt.xml",
        "haarcascade_frontalface_alt2.xml",
        "haarcascade_profileface.xml",
    ] = "haarcascade_frontalface_default.xml"
    scale_factor: float = Field(1.1, gt=1, le=2)
    min_neighbors: int = Field(5, ge=0, le=50)
    min_size: int = Field(24, ge=8, le=1024)  # smallest face side in pixels of the frame
    max_boxes: int = Field(16, ge=0, le=256)


class PersonsOptions(Options):
    win_stride: int = Field(8, ge=4, le=64)
    scale: float = Field(1.05, gt=1, le=2)
    min_weight: float = Field(0.3)  # SVM score below this is no person
    max_boxes: int = Field(16, ge=0, le=256)


class LevelOptions(Options):
    floor_dbfs: float = Field(-100.0, le=-20)  # digital silence reads as this


BOXES = "array"  # [[x0, y0, x1, y1], ...] in 0..1 of the frame, largest or surest first

BUILTIN_SPECS = [
    AnalyzerSpec(
        "motion",
        "video",
        "daemon.workers.analyzers.motion:MotionAnalyzer",
        MotionOptions,
        "share of pixels changed since the stream's previous frame, and where",
        outputs={
            "score": "number?",
            "mean_diff": "number?",
            "moving": "boolean",
            "boxes": BOXES,
        },
    ),
    AnalyzerSpec(
        "black",
        "video",
        "daemon.workers.analyzers.black:BlackAnalyzer",
        BlackOptions,
        "black frames, as FFmpeg's blackdetect",
        outputs={
            "black": "boolean",
            "ratio": "number",
            "since": "number?",
            "run_s": "number",
            "confirmed": "boolean",
        },
    ),
    AnalyzerSpec(
        "frozen",
        "video",
        "daemon.workers.analyzers.frozen:FrozenAnalyzer",
        FrozenOptions,
        "frozen frames, as FFmpeg's freezedetect",
        outputs={
            "frozen": "boolean",
            "mafd": "number?",
            "since": "number?",
            "run_s": "number",
            "confirmed": "boolean",
        },
    ),
    AnalyzerSpec(
        "scene",
        "video",
        "daemon.workers.analyzers.scene:SceneAnalyzer",
        SceneOptions,
        "scene cuts, as FFmpeg's scdet",
        outputs={"score": "number?", "scene_change": "boolean"},
    ),
    AnalyzerSpec(
        "blur",
        "video",
        "daemon.workers.analyzers.blur:BlurAnalyzer",
        BlurOptions,
        "sharpness as the variance of the Laplacian of luma",
        outputs={"sharpness": "number", "blurry": "boolean"},
    ),
    AnalyzerSpec(
        "faces",
        "video",
        "daemon.workers.analyzers.faces:FacesAnalyzer",
        FacesOptions,
        "faces with OpenCV's pretrained Haar cascade",
        outputs={"count": "integer", "boxes": BOXES},
    ),
    AnalyzerSpec(
        "persons",
        "video",
        "daemon.workers.analyzers.persons:PersonsAnalyzer",
        PersonsOptions,
        "upright people with OpenCV's pretrained HOG people detector",
        outputs={"count": "integer", "boxes": BOXES, "scores": "array"},
    ),
    *MODEL_SPECS,
    AnalyzerSpec(
        "level",
        "audio",
        "daemon.workers.analyzers.level:LevelAnalyzer",
        LevelOptions,
        "RMS and peak level in dBFS",
        outputs={"rms_dbfs": "number", "peak_dbfs": "number"},
    ),
]
