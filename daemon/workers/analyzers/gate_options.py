"""The motion-gate options an analyzer takes by deriving its options from `GateOptions`:
the model-backed analyzers, faces, persons, and any plugin that declares them. No torch
imported here: config validation imports this module."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from daemon.workers.analyzers.base import Options

GateMode = Literal["none", "motion", "motion_regions"]


class GateOptions(Options):
    # Cascade: with gate = "motion", a frame reaches the analyzer only when enough of it
    # changed since the stream's last frame; the others repeat the stream's last result.
    # "motion_regions" (box analyzers only) also shows it just the changed region.
    gate: GateMode = "none"
    gate_min_score: float = Field(0.002, ge=0, le=1)  # share of pixels changed
    gate_pixel_threshold: int = Field(25, ge=1, le=255)
    gate_refresh_s: float = Field(10.0, gt=0)  # run the analyzer at least this often anyway
    gate_region_margin: float = Field(0.1, ge=0, le=0.5)  # of the frame's side
    gate_region_min_side: float = Field(0.25, gt=0, le=1)  # share of each side, at least
    gate_region_max_area: float = Field(0.5, gt=0, le=1)  # larger: the whole frame runs
    # "motion_regions" only: when the whole picture moved (a panning or shaking camera),
    # estimate that shift, search only what moved against it and the edge it uncovered,
    # and carry the last boxes along with the picture (gate.py).
    gate_camera_motion: bool = False

    # Whether the analyzer can look at a region only: its outputs are `count` and
    # `boxes` ([x0, y0, x1, y1] in 0..1) with lists parallel to the boxes (`scores`,
    # `labels`), so boxes found in a region map back into the frame.
    regions: ClassVar[bool] = False
    # Whether a region is widened to the frame's aspect ratio: for analyzers that resize
    # what they see to a fixed input; faces and persons look at the crop as it is.
    region_frame_aspect: ClassVar[bool] = True

    @field_validator("gate")
    @classmethod
    def _regions_supported(cls, gate: str) -> str:
        if gate == "motion_regions" and not cls.regions:
            raise ValueError('"motion_regions" is for box analyzers only; use "motion"')
        return gate

    @field_validator("gate_camera_motion")
    @classmethod
    def _camera_needs_regions(cls, on: bool, info: ValidationInfo) -> bool:
        if on and info.data.get("gate") != "motion_regions":
            raise ValueError('needs gate = "motion_regions"')
        return on
