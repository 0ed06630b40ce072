"""tandemd with batching vision workers on the truth clip: the black, frozen and scene
facts reach the fused records where the clip has them, and the worker's own /metrics
counts every item."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.publishing.subscriber import Subscriber
from tests.conftest import free_port
from tests.support.vision_clips import truth_clip
from tests.test_end_to_end import collect_until_ended, scrape

pytestmark = pytest.mark.slow


def test_vision_facts_reach_fused_records(tandemd, tmp_path: Path) -> None:
    clip = truth_clip(tmp_path / "truth.mp4")
    pub, worker_metrics = free_port(), free_port()
    config = f"""
runtime_dir = "{tmp_path}/run"
[log]
digest_s = 0
[[streams]]
id = "truth"
url = "{clip}"
mode = "file"
audio = false
fps = 10
width = 320
height = 240
[workers.vision]
count = 1
capacity = 8
analyzers = ["black", "frozen", "scene", "motion"]
max_batch = 4
max_wait_ms = 20
metrics_port = {worker_metrics}
[workers.audio]
count = 0
analyzers = ["level"]
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = 0
"""
    with Subscriber(f"tcp://127.0.0.1:{pub}", ["fused.", "status."]) as sub:
        daemon = tandemd(config)
        records = collect_until_ended(sub, ["truth"], timeout_s=90)["truth"]
        samples = scrape(worker_metrics)
        assert daemon.stop() == 0
    by_start = {r["window"]["start"]: r["video"]["analyzers"] for r in records}
    assert by_start[4.0]["black"]["black"]["min"] == 1.0  # all of 4-5 s is black
    assert by_start[1.0]["black"]["black"]["max"] == 0.0
    assert by_start[10.0]["frozen"]["frozen"]["mean"] == 1.0  # still through 9-12.4 s
    assert by_start[10.0]["frozen"]["confirmed"]["max"] == 0.0  # still under 2 s
    assert by_start[11.0]["frozen"]["confirmed"]["min"] == 1.0  # 2 s after 9 s: confirmed
    assert by_start[1.0]["motion"]["moving"]["min"] == 1.0
    assert by_start[13.0]["scene"]["scene_change"]["max"] == 1.0  # the cut at 13.6 s
    assert by_start[1.0]["scene"]["scene_change"]["max"] == 0.0
    results = sum(r["video"]["results"] for r in records)
    assert samples[("tandem_worker_items_total", ())] == results == 150
