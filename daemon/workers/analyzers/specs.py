"""Specs, options and output schemas of the built-in analyzers (no torch imported here:
config validation imports this module). The frame analyzers without a model work with
OpenCV and NumPy alone (`uses_torch=False`): a vision worker that runs only those never
loads torch."""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from daemon.workers.analyzers.base import AnalyzerSpec, Options
from daemon.workers.analyzers.gate_options import GateOptions
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
    """FFmpeg freezedetect's parameters: noise (FFmpeg's default 0.001 = -60 dB is below
    an H.264 keyframe's re-quantisation of a still picture: 0.001-0.0033 measured at
    640x360, crf 18-23; 0.003 = -50 dB holds a still run through most), duration."""

    noise: float = Field(0.003, ge=0, le=1)
    duration_s: float = Field(2.0, ge=0)
    max_gap_s: float = Field(2.0, gt=0)


class SceneOptions(Options):
    """FFmpeg scdet's threshold, divided by 100 (scdet scores 0..100, we score 0..1)."""

    threshold: float = Field(0.10, ge=0, le=1)
    max_gap_s: float = Field(2.0, gt=0)


class BlurOptions(Options):
    threshold: float = Field(100.0, ge=0)  # `blurry` below this variance of the Laplacian


class FacesOptions(GateOptions):
    regions: ClassVar[bool] = True
    region_frame_aspect: ClassVar[bool] = False
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


class PersonsOptions(GateOptions):
    regions: ClassVar[bool] = True
    region_frame_aspect: ClassVar[bool] = False
    win_stride: int = Field(8, ge=4, le=64)
    scale: float = Field(1.05, gt=1, le=2)
    min_weight: float = Field(0.3)  # SVM score below this is no person
    max_boxes: int = Field(16, ge=0, le=256)


class LevelOptions(Options):
    floor_dbfs: float = Field(-100.0, le=-20)  # digital silence reads as this


class OnsetOptions(Options):
    # A 10 ms frame at least `rise_db` above the quietest of the previous 100 ms and at
    # least `min_level_dbfs` is a sound onset; onsets closer than `min_gap_s` are one.
    rise_db: float = Field(20.0, gt=0, le=120)
    min_level_dbfs: float = Field(-40.0, ge=-100, le=0)
    min_gap_s: float = Field(0.1, ge=0.01, le=10)


class LoudnessOptions(Options):
    floor_lufs: float = Field(-100.0, le=-70)  # digital silence reads as this


class SilenceOptions(Options):
    # FFmpeg silencedetect's defaults: a sample below -60 dBFS is silent; 2 s of them is silence.
    threshold_dbfs: float = Field(-60.0, ge=-140, le=0)
    min_duration_s: float = Field(2.0, gt=0, le=3600)


class ClippingOptions(Options):
    threshold_dbfs: float = Field(-0.1, ge=-6, le=0)  # a sample at or above this is clipped
    min_run: int = Field(3, ge=1, le=1000)  # consecutive clipped samples that make a clip


class VadOptions(Options):
    threshold: float = Field(0.5, gt=0, lt=1)  # speech starts at this probability
    # speech ends when the probability stays below threshold - 0.15 this long
    min_silence_ms: int = Field(100, ge=0, le=10000)
    speech_pad_ms: int = Field(30, ge=0, le=1000)  # spans widened by this each side


class MelOptions(Options):
    bands: int = Field(8, ge=1, le=64)
    window_ms: float = Field(25.0, ge=2, le=1000)
    hop_ms: float = Field(10.0, ge=1, le=1000)
    fmin_hz: float = Field(0.0, ge=0)
    fmax_hz: float | None = Field(None, gt=0)  # None: half the sample rate
    floor_db: float = Field(-100.0, le=-20)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.hop_ms > self.window_ms:
            raise ValueError(f"hop_ms: {self.hop_ms} is longer than window_ms {self.window_ms}")
        if self.fmax_hz is not None and self.fmax_hz <= self.fmin_hz:
            raise ValueError(f"fmax_hz: {self.fmax_hz} is not above fmin_hz {self.fmin_hz}")
        return self


class ModelOptions(Options):
    # A directory saved with save_pretrained, or a hub id looked up in the local cache.
    model: str = Field(min_length=1)
    allow_download: bool = False  # only then may a hub id be fetched from the network
    window_s: float = Field(10.0, gt=0.5, le=30)  # audio the model sees at once
    hop_s: float = Field(2.0, gt=0, le=30)  # run the model once per this much new audio

    @model_validator(mode="after")
    def _hop_within_window(self) -> Self:
        if self.hop_s > self.window_s:
            raise ValueError(f"hop_s: {self.hop_s} is longer than window_s {self.window_s}")
        return self


class ClassifyOptions(ModelOptions):
    top_k: int = Field(3, ge=1, le=20)
    # labels whose score is always output, as score_<label> (lowercase, _ for non-alnum)
    watch: list[str] = Field(default_factory=list, max_length=32)


class TranscribeOptions(ModelOptions):
    window_s: float = Field(10.0, gt=0.5, le=30)  # Whisper sees at most 30 s
    hop_s: float = Field(10.0, gt=0, le=30)  # by default windows do not overlap
    language: str | None = None  # None: the model's own (or detected)
    max_new_tokens: int = Field(96, ge=1, le=440)


def _audio(name: str, module: str, cls: str, options: type[Options], text: str) -> AnalyzerSpec:
    return AnalyzerSpec(name, "audio", f"daemon.workers.analyzers.{module}:{cls}", options, text)


# What an audio worker runs when the config names nothing: the built-ins without a model.
DEFAULT_AUDIO = ("level", "loudness", "silence", "clipping", "vad", "mel")
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
            "still_since": "number?",
        },
        uses_torch=False,
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
        uses_torch=False,
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
        uses_torch=False,
    ),
    AnalyzerSpec(
        "scene",
        "video",
        "daemon.workers.analyzers.scene:SceneAnalyzer",
        SceneOptions,
        "scene cuts, as FFmpeg's scdet",
        outputs={"score": "number?", "scene_change": "boolean"},
        uses_torch=False,
    ),
    AnalyzerSpec(
        "blur",
        "video",
        "daemon.workers.analyzers.blur:BlurAnalyzer",
        BlurOptions,
        "sharpness as the variance of the Laplacian of luma",
        outputs={"sharpness": "number", "blurry": "boolean"},
        uses_torch=False,
    ),
    AnalyzerSpec(
        "faces",
        "video",
        "daemon.workers.analyzers.faces:FacesAnalyzer",
        FacesOptions,
        "faces with OpenCV's pretrained Haar cascade",
        outputs={
            "count": "integer",
            "boxes": BOXES,
            "region": "array?",
            "regions": "array?",  # with gate_camera_motion
            "gated": "boolean",
        },
        uses_torch=False,
    ),
    AnalyzerSpec(
        "persons",
        "video",
        "daemon.workers.analyzers.persons:PersonsAnalyzer",
        PersonsOptions,
        "upright people with OpenCV's pretrained HOG people detector",
        outputs={
            "count": "integer",
            "boxes": BOXES,
            "scores": "array",
            "region": "array?",  # [x0, y0, x1, y1] in 0..1 the detector saw; null: all
            "regions": "array?",  # with gate_camera_motion: each part it saw
            "gated": "boolean",
        },
        uses_torch=False,
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
    _audio(
        "loudness",
        "loudness",
        "LoudnessAnalyzer",
        LoudnessOptions,
        "EBU R128 momentary, short-term and integrated loudness (BS.1770)",
    ),
    _audio(
        "silence", "silence", "SilenceAnalyzer", SilenceOptions, "silences and their boundaries"
    ),
    _audio("clipping", "clipping", "ClippingAnalyzer", ClippingOptions, "clipped samples"),
    _audio("vad", "vad", "VadAnalyzer", VadOptions, "voice activity with silero-vad"),
    _audio("mel", "mel", "MelAnalyzer", MelOptions, "mel-band energies in dB"),
    AnalyzerSpec(
        "onset",
        "audio",
        "daemon.workers.analyzers.onset:OnsetAnalyzer",
        OnsetOptions,
        "sound onsets (a sudden rise in level) with their media times, for A/V sync",
        outputs={"onsets": "array", "count": "integer"},
    ),
    _audio(
        "classify",
        "audio_classes",
        "ClassifyAnalyzer",
        ClassifyOptions,
        "audio classification (AST, AudioSet labels) with transformers",
    ),
    _audio(
        "transcribe",
        "transcribe",
        "TranscribeAnalyzer",
        TranscribeOptions,
        "speech recognition (Whisper) with timestamps, with transformers",
    ),
]
