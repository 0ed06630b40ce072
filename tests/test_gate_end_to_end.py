"""The motion gate of faces through a real tandemd, its worker process and ZeroMQ, on an
H.264 file: the still second repeats the first frame's faces marked gated, the moving
part runs on regions, the still face stays one track through the gated frames, and
tandemd's /metrics counts the gated and region frames the detections show."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from daemon.publishing.subscriber import Subscriber
from tests.conftest import free_port, scrape
from tests.support.vision_clips import encode, face
from tests.test_end_to_end import collect_until_ended

pytestmark = pytest.mark.slow
SOURCE_FPS, FPS = 10, 5
W, H = 640, 360


def frame(i: int) -> np.ndarray:
    """A still face on the left; from 2 s a second face moving right on the right."""
    image = np.full((H, W, 3), 90, np.uint8)
    face(image, 150, 180, 120)
    if i >= 2 * SOURCE_FPS:
        face(image, 430 + 6 * (i - 2 * SOURCE_FPS), 170, 100)
    return cv2.GaussianBlur(image, (5, 5), 0)


def config(tmp: Path, clip: Path, pub: int, metrics: int) -> str:
    return f"""
runtime_dir = "{tmp}/run"
[log]
digest_s = 0
[[streams]]
id = "hall"
url = "{clip}"
mode = "file"
audio = false
fps = {FPS}
track = ["faces"]
[workers.vision]
count = 1
analyzers = ["faces"]
[workers.vision.options.faces]
gate = "motion_regions"
gate_refresh_s = 3.0
[workers.audio]
count = 0
analyzers = ["level"]
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = {metrics}
[snapshots]
enabled = false
"""


def counted(port: int, name: str) -> float:
    return sum(
        value
        for (sample, labels), value in scrape(port).items()
        if sample == name and dict(labels).get("analyzer") == "faces"
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.conftest import Daemon

    tmp = tmp_path_factory.mktemp("gate-e2e")
    clip = encode(tmp / "hall.mp4", 4 * SOURCE_FPS, frame, fps=SOURCE_FPS)
    pub, metrics = free_port(), free_port()
    (tmp / "config.toml").write_text(config(tmp, clip, pub, metrics))
    endpoint = f"tcp://127.0.0.1:{pub}"
    with (
        Subscriber(endpoint, ["fused.", "status."]) as sub,
        Subscriber(endpoint, ["detections."]) as per_item,
    ):
        daemon = Daemon(tmp / "config.toml", tmp / "tandemd.log")
        try:
            fused = collect_until_ended(sub, ["hall"], timeout_s=90)["hall"]
            detections = [r["outputs"]["faces"] for _, r in per_item.records(timeout_s=1.0)]
            # Workers report their figures with their heartbeats (every second).
            gated = sum(d["gated"] is True for d in detections)
            deadline = time.monotonic() + 15
            while counted(metrics, "tandem_worker_gated_frames_total") < gated:
                assert time.monotonic() < deadline, daemon.log()
                time.sleep(0.2)
            figures = {
                name: counted(metrics, name)
                for name in (
                    "tandem_worker_gated_frames_total",
                    "tandem_worker_region_frames_total",
                )
            }
            assert daemon.stop() == 0, daemon.log()
        finally:
            daemon.kill()
    return {"fused": fused, "detections": detections, "figures": figures}


def test_still_frames_repeat_the_last_faces_marked_gated(run: dict[str, Any]) -> None:
    detections = run["detections"]
    assert len(detections) == 4 * FPS
    first = detections[0]
    assert first["gated"] is False and first["count"] == 1 and first["region"] is None
    still = detections[1 : 2 * FPS]
    assert still and all(d == {**first, "gated": True} for d in still)
    moving = detections[2 * FPS :]
    assert all(d["gated"] is False and d["region"] is not None for d in moving)
    assert all(d["count"] == 2 and first["boxes"][0] in d["boxes"] for d in moving)


def test_tandemd_counts_the_gated_and_region_frames(run: dict[str, Any]) -> None:
    detections, figures = run["detections"], run["figures"]
    assert figures["tandem_worker_gated_frames_total"] == 2 * FPS - 1
    assert figures["tandem_worker_gated_frames_total"] == sum(d["gated"] for d in detections)
    regions = sum(d["region"] is not None for d in detections)
    assert figures["tandem_worker_region_frames_total"] == regions == 2 * FPS


def test_the_still_face_is_one_track_through_the_gated_frames(run: dict[str, Any]) -> None:
    tracks: dict[int, list[dict[str, Any]]] = {}
    for record in run["fused"]:
        for track in record["tracks"]:
            tracks.setdefault(track["id"], []).append(track)
    left = [sightings for sightings in tracks.values() if sightings[0]["box"][2] < 0.4]
    assert len(left) == 1, tracks  # the still face: one id from the first frame to the end
    assert left[0][0]["first_seen"] == 0.0
    assert left[0][-1]["last_seen"] >= 3.0
