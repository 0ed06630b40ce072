"""Model-backed audio analyzers: tiny random-weight AST and Whisper models saved locally,
loaded by path through the registry the worker uses; results checked against a schema."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import torch

from daemon.config import ConfigError, parse_config
from daemon.workers.analyzers import WorkItem, build
from daemon.workers.analyzers.pretrained import ModelNotAvailableError
from tests.support.audio_media import chunks, speech_with_gaps, write_wav
from tests.support.tiny_audio_models import AUDIOSET_LABELS, tiny_ast, tiny_whisper

NUMBER_OR_NULL = {"type": ["number", "null"]}
CLASSIFY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["labels", "scores", "top_label", "top_score", "score_speech", "score_siren"],
    "properties": {
        "labels": {"type": "array", "items": {"enum": AUDIOSET_LABELS}, "maxItems": 3},
        "scores": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}},
        "top_label": {"enum": [*AUDIOSET_LABELS, None]},
        "top_score": NUMBER_OR_NULL,
        "score_speech": NUMBER_OR_NULL,
        "score_siren": NUMBER_OR_NULL,
        "window_start": NUMBER_OR_NULL,
        "window_end": NUMBER_OR_NULL,
    },
}
SEGMENT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["start", "end", "text"],
    "properties": {
        "start": {"type": "number"},
        "end": {"type": "number"},
        "text": {"type": "string"},
    },
}
TRANSCRIBE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["text", "segments", "window_start", "window_end"],
    "properties": {
        "text": {"type": ["string", "null"]},
        "segments": {"type": "array", "items": SEGMENT},
        "window_start": NUMBER_OR_NULL,
        "window_end": NUMBER_OR_NULL,
    },
}


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> list[WorkItem]:
    samples, rate, _ = speech_with_gaps(["Hello there.", "Models listen."], [0.5, 0.7, 0.5])
    return chunks(write_wav(tmp_path_factory.mktemp("asr") / "s.wav", samples, rate))


@pytest.mark.slow
def test_classify_with_a_local_ast_gives_schema_valid_results(
    tmp_path: Path, speech: list[WorkItem]
) -> None:
    model = tiny_ast(tmp_path / "ast")
    options = {"model": str(model), "window_s": 2.0, "hop_s": 1.0, "watch": ["Speech", "siren"]}
    [classify] = build(["classify"], "audio", {"classify": options})
    outs = [classify.analyze(item) for item in speech]
    for out in outs:
        jsonschema.validate(out, CLASSIFY)
    ran = [o for o in outs if o["labels"]]
    assert len(ran) == len(speech) // 2  # once per second of 0.5 s chunks
    assert all(o["window_end"] - o["window_start"] <= 2.0 + 1e-6 for o in ran)  # type: ignore[operator]
    assert ran[0]["scores"] == sorted(ran[0]["scores"], reverse=True)  # type: ignore[type-var]


def test_transcribe_with_a_local_whisper_gives_schema_valid_timestamps(
    tmp_path: Path, speech: list[WorkItem]
) -> None:
    model = tiny_whisper(tmp_path / "whisper")
    options = {"model": str(model), "window_s": 2.0, "hop_s": 2.0, "max_new_tokens": 8}
    [transcribe] = build(["transcribe"], "audio", {"transcribe": options})
    outs = [transcribe.analyze(item) for item in speech]
    for out in outs:
        jsonschema.validate(out, TRANSCRIBE)
    ran = [o for o in outs if o["text"] is not None]
    assert len(ran) == len(speech) // 4
    for out in ran:
        for segment in out["segments"]:  # type: ignore[union-attr]
            assert out["window_start"] <= segment["start"] <= segment["end"] <= out["window_end"]  # type: ignore[index,operator]


def test_a_model_that_is_not_local_is_not_downloaded(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match="downloads are off"):
        build(["classify"], "audio", {"classify": {"model": "nobody/no-such-model-here"}})
    with pytest.raises(ModelNotAvailableError, match="is not a directory"):
        build(["transcribe"], "audio", {"transcribe": {"model": str(tmp_path / "missing")}})


def test_a_model_analyzer_without_a_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"workers\.audio\.options\.classify\.model"):
        parse_config({"workers": {"audio": {"analyzers": ["level", "classify"]}}})


def test_watching_an_unknown_label_names_it(tmp_path: Path) -> None:
    model = tiny_ast(tmp_path / "ast")
    with pytest.raises(ValueError, match="Unicorn"):
        build(["classify"], "audio", {"classify": {"model": str(model), "watch": ["Unicorn"]}})


@pytest.mark.slow
def test_silence_goes_through_both_models(tmp_path: Path) -> None:
    ast, whisper = tiny_ast(tmp_path / "ast"), tiny_whisper(tmp_path / "w")
    analyzers = build(
        ["classify", "transcribe"],
        "audio",
        {
            "classify": {"model": str(ast), "window_s": 1.0, "hop_s": 0.5},
            "transcribe": {
                "model": str(whisper),
                "window_s": 1.0,
                "hop_s": 0.5,
                "max_new_tokens": 4,
            },
        },
    )
    item = WorkItem("s", "audio", 0, 0.0, torch.zeros(8000), 16000)
    classify, transcribe = (a.analyze(item) for a in analyzers)
    jsonschema.validate(classify, CLASSIFY | {"required": ["labels"]})
    jsonschema.validate(transcribe, TRANSCRIBE)
    assert classify["labels"] and transcribe["text"] is not None


def test_audio_workers_default_to_one_per_core_with_the_builtins() -> None:
    import os

    config = parse_config({})
    assert config.workers.audio.count == "auto"
    assert config.workers.audio.processes == len(os.sched_getaffinity(0))
    assert config.workers.audio.analyzers == [
        "level",
        "loudness",
        "silence",
        "clipping",
        "vad",
        "mel",
    ]
    assert parse_config({"workers": {"audio": {"count": 3}}}).workers.audio.processes == 3
    with pytest.raises(ConfigError, match=r"workers\.audio\.count"):
        parse_config({"workers": {"audio": {"count": "many"}}})
