"""The overload policy: lowest priority streams lose analysis fps first, and get it back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from daemon.config import parse_config
from daemon.core.metrics import Metrics
from daemon.dispatch.degrade import CALM_S, EVAL_S, Degrader
from daemon.publishing.subscriber import Subscriber
from tests.conftest import free_port, metric, wait_until


def make(streams: list[dict]) -> tuple[Degrader, list[tuple[str, float]]]:
    config = parse_config({"streams": streams})
    calls: list[tuple[str, float]] = []
    degrader = Degrader(
        config.streams,
        Metrics(CollectorRegistry()),
        set_fps=lambda s, fps: calls.append((s, fps)),
        on_change=lambda *args: None,
        now=0.0,
    )
    return degrader, calls


def stream(sid: str, priority: int, fps: float = 8.0, **more: object) -> dict:
    return {"id": sid, "url": "x", "fps": fps, "priority": priority, **more}


def test_lowest_priority_first_down_to_its_floor_then_the_next() -> None:
    degrader, calls = make([stream("hi", 5), stream("lo", -1), stream("mid", 0)])
    t = 0.0
    for _ in range(4):
        t += EVAL_S
        degrader.on_stale("hi", "video")
        degrader.tick(t)
    # lo: 8 -> 4 -> 2 (its floor, a quarter), then mid.
    assert calls == [("lo", 4.0), ("lo", 2.0), ("mid", 4.0), ("mid", 2.0)]


def test_no_stale_drops_no_action_and_calm_restores_highest_priority_first() -> None:
    degrader, calls = make([stream("a", 1), stream("b", 0), stream("file", -9, mode="file")])
    t = EVAL_S
    degrader.tick(t)
    assert calls == []
    for _ in range(3):
        degrader.on_stale("a", "video")
        t += EVAL_S
        degrader.tick(t)
    assert calls == [("b", 4.0), ("b", 2.0), ("a", 4.0)]  # a file stream is never touched
    calls.clear()
    t += CALM_S
    degrader.tick(t)
    assert calls == [("a", 8.0)]
    t += CALM_S
    degrader.tick(t)
    assert calls == [("a", 8.0), ("b", 4.0)]


def test_audio_stale_drops_leave_video_fps_alone() -> None:
    # Halving video fps relieves the vision pool only; a stuck audio worker must not cost
    # every stream its video analysis.
    degrader, calls = make([stream("a", 0)])
    t = 0.0
    for _ in range(3):
        degrader.on_stale("a", "audio")
        t += EVAL_S
        degrader.tick(t)
    assert calls == []
    degrader.on_stale("a", "video")
    degrader.tick(t + EVAL_S)
    assert calls == [("a", 4.0)]


def test_min_fps_above_fps_is_a_config_error() -> None:
    from daemon.config import ConfigError

    with pytest.raises(ConfigError, match="min_fps"):
        parse_config({"streams": [stream("a", 0, fps=2.0, min_fps=3.0)]})


LIVE = """
url = "testsrc2=size=640x360:rate=25[out0];sine=frequency=500:sample_rate=16000[out1]"
format = "lavfi"
fps = 10
latency_objective_ms = 300
"""


@pytest.mark.slow
def test_overloaded_workers_lower_the_low_priority_stream_first(tandemd, tmp_path: Path) -> None:
    pub, port = free_port(), free_port()
    with Subscriber(f"tcp://127.0.0.1:{pub}", ["status.", "fused."]) as sub:
        tandemd(f"""
runtime_dir = "{tmp_path}/run"
[log]
digest_s = 0
[[streams]]
id = "lobby"
priority = -5
{LIVE}
[[streams]]
id = "vault"
priority = 10
{LIVE}
[workers.vision]
count = 1
capacity = 1
analyzers = ["persons"]
[workers.audio]
count = 1
analyzers = ["level"]
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = {port}
""")
        # HOG people detection on 640x360 cannot keep up with 20 frames/s on this machine.
        first_change = None
        lobby_items: list[int] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for _, message in sub.records(timeout_s=1):
                if message["type"] == "analysis_rate" and first_change is None:
                    first_change = message
                if first_change and message["type"] == "fused" and message["stream"] == "lobby":
                    lobby_items.append(message["video"]["items"])
                break
            if len(lobby_items) >= 4:
                break
    assert first_change is not None, "no analysis_rate change published"
    assert first_change["stream"] == "lobby" and first_change["degraded"] is True
    assert first_change["fps"] == 5.0 and first_change["configured_fps"] == 10.0
    assert metric(port, "tandem_degrade_actions_total", stream="lobby", direction="down") >= 1
    assert metric(port, "tandem_stream_analysis_fps", stream="lobby") < 10
    # The ingest process really samples slower: later windows hold at most ~5 frames.
    assert min(lobby_items[-2:]) <= 6, lobby_items
    assert wait_until(lambda: metric(port, "tandem_stream_analysis_fps", stream="vault") > 0, 5)
