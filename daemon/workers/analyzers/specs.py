"""Specs and options of the built-in analyzers (no torch imported here)."""

from __future__ import annotations

from pydantic import Field

from daemon.workers.analyzers.base import AnalyzerSpec, Options


class MotionOptions(Options):
    pixel_threshold: int = Field(25, ge=1, le=255)  # a change below this is noise
    max_gap_s: float = Field(2.0, gt=0)  # a previous frame older than this is no reference


class LevelOptions(Options):
    floor_dbfs: float = Field(-100.0, le=-20)  # digital silence reads as this


BUILTIN_SPECS = [
    AnalyzerSpec(
        "motion",
        "video",
        "daemon.workers.analyzers.motion:MotionAnalyzer",
        MotionOptions,
        "share of pixels changed since the stream's previous frame",
    ),
    AnalyzerSpec(
        "level",
        "audio",
        "daemon.workers.analyzers.level:LevelAnalyzer",
        LevelOptions,
        "RMS and peak level in dBFS",
    ),
]
