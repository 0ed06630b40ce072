"""What detectors and speech models found reaches subscribers, through a real tandemd:
faces and persons boxes per item and as tracks, VAD spans on real espeak-ng speech and a
tiny random-weight Whisper's transcript in the fused records of their windows."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from daemon.publishing.subscriber import Subscriber
from daemon.workers.analyzers import spec_for
from tests.conftest import free_port
from tests.support.audio_media import speech_with_gaps, write_wav
from tests.support.schemas import validate_published
from tests.support.tiny_audio_models import tiny_whisper
from tests.support.vision_clips import encode, faces_and_persons_frame
from tests.test_end_to_end import collect_until_ended

pytestmark = pytest.mark.slow


def _run(tandemd, config: str, pub: int, stream: str) -> tuple[list[dict], list[dict]]:
    """(fused records, detections) of one file stream, until it ended."""
    endpoint = f"tcp://127.0.0.1:{pub}"
    with (
        Subscriber(endpoint, ["fused.", "status."]) as sub,
        Subscriber(endpoint, ["detections."]) as per_item,
    ):
        daemon = tandemd(config)
        fused = collect_until_ended(sub, [stream], timeout_s=120)[stream]
        detections = [r for _, r in per_item.records(timeout_s=1.0)]
        assert daemon.stop() == 0, daemon.log()
    for record in detections:
        validate_published(f"detections.{stream}", record)
    return fused, detections


def test_faces_and_persons_reach_detections_and_tracks(tandemd, tmp_path: Path) -> None:
    clip = encode(tmp_path / "people.mp4", 30, faces_and_persons_frame, fps=10)
    pub = free_port()
    config = f"""
runtime_dir = "{tmp_path}/run"
[log]
digest_s = 0
[[streams]]
id = "hall"
url = "{clip}"
mode = "file"
audio = false
fps = 10
[workers.vision]
count = 1
analyzers = ["faces", "persons"]
[workers.audio]
count = 0
analyzers = ["level"]
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = 0
"""
    fused, detections = _run(tandemd, config, pub, "hall")
    assert [d["seq"] for d in detections] == list(range(30))
    for name in ("faces", "persons"):
        schema = spec_for(name, "video").output_schema()
        for d in detections:
            jsonschema.validate(d["outputs"][name], schema)  # the documented structure
    faces = [d["outputs"]["faces"] for d in detections if d["pts"] < 1.0]
    assert all(f["count"] == 2 and len(f["boxes"]) == 2 for f in faces)
    x0, y0, x1, y1 = faces[0]["boxes"][0]  # the larger face, drawn around (200, 180)
    assert x0 < 200 / 640 < x1 and y0 < 180 / 360 < y1
    people = [d["outputs"]["persons"] for d in detections if 1.0 <= d["pts"] < 2.0]
    assert sum(p["count"] for p in people) >= 15
    assert all(len(p["scores"]) == len(p["boxes"]) == p["count"] for p in people)
    # Tracked by default (faces and persons are box analyzers): two faces, then people.
    tracks = {t["id"]: t for r in fused for t in r["tracks"]}
    labels = sorted(t["label"] for t in tracks.values())
    assert labels.count("face") == 2 and labels.count("person") >= 2
    for track in tracks.values():
        if track["label"] == "face":
            assert track["first_seen"] == pytest.approx(0.0, abs=0.15)
            assert track["last_seen"] == pytest.approx(0.9, abs=0.15)


def test_speech_spans_and_transcript_reach_the_fused_records(tandemd, tmp_path: Path) -> None:
    samples, rate, truth = speech_with_gaps(
        ["Streams of audio arrive in chunks.", "Then speech begins again."], [1.2, 1.5, 1.0]
    )
    wav = write_wav(tmp_path / "speech.wav", samples, rate)
    whisper = tiny_whisper(tmp_path / "whisper")
    pub = free_port()
    config = f"""
runtime_dir = "{tmp_path}/run"
[log]
digest_s = 0
[[streams]]
id = "desk"
url = "{wav}"
mode = "file"
video = false
[workers.vision]
count = 0
analyzers = ["motion"]
[workers.audio]
count = 1
analyzers = ["vad", "transcribe"]
[workers.audio.options.transcribe]
model = "{whisper}"
window_s = 2.0
hop_s = 2.0
max_new_tokens = 8
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = 0
"""
    fused, detections = _run(tandemd, config, pub, "desk")
    assert detections and all(set(d["outputs"]) == {"vad", "transcribe"} for d in detections)
    # Spans per window, joined across window edges, equal the spoken phrases.
    joined: list[list[float]] = []
    for record in fused:
        for span in record["speech"]:
            assert record["window"]["start"] <= span["start"] <= span["end"]
            assert span["end"] <= record["window"]["end"]
            if joined and abs(joined[-1][1] - span["start"]) < 1e-6:
                joined[-1][1] = span["end"]
            else:
                joined.append([span["start"], span["end"]])
    assert len(joined) == len(truth), joined
    for (start, end), (true_start, true_end) in zip(joined, truth, strict=True):
        assert start == pytest.approx(true_start, abs=0.3)
        assert end == pytest.approx(true_end, abs=0.3)
    # The model ran every 2 s of audio: its output is in the window whose audio completed it.
    transcribed = [r for r in fused if r["transcript"]["text"] is not None]
    duration = len(samples) / rate
    assert len(transcribed) == pytest.approx(duration // 2, abs=1)
    for record in transcribed:
        for segment in record["transcript"]["segments"]:
            assert 0 <= segment["start"] <= segment["end"] <= record["window"]["end"] + 1e-6
