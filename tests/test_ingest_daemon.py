"""Ingest inside a whole tandemd: health states as status messages and metrics, and one
stream's broken source never stopping another's."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from daemon.publishing.subscriber import Subscriber
from tests.conftest import free_port
from tests.test_end_to_end import scrape

pytestmark = pytest.mark.slow


def config(tmp: Path, pub: int, metrics: int, dead_url: str) -> str:
    return f"""
runtime_dir = "{tmp}/run"
[log]
digest_s = 0
[[streams]]
id = "good"
url = "testsrc2=size=320x240:rate=25[out0];sine=frequency=440:sample_rate=48000[out1]"
format = "lavfi"
fps = 5
width = 160
height = 120
[[streams]]
id = "dead"
url = "{dead_url}"
reconnect_min_s = 0.2
reconnect_max_s = 1.0
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = {metrics}
"""


def test_unopenable_url_fails_clearly_while_another_stream_flows(tandemd, tmp_path):
    pub, metrics_port = free_port(), free_port()
    dead_url = f"rtsp://127.0.0.1:{free_port()}/cam"  # nothing listens: refused
    statuses: dict[str, list[dict]] = {"good": [], "dead": []}
    fused_good = 0
    with Subscriber(f"tcp://127.0.0.1:{pub}", ["fused.", "status."]) as sub:
        daemon = tandemd(config(tmp_path, pub, metrics_port, dead_url))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (fused_good < 3 or len(statuses["dead"]) < 4):
            for _, record in sub.records(timeout_s=0.5):
                if record["type"] == "status":
                    statuses[record["stream"]].append(record)
                elif record["stream"] == "good":
                    fused_good += 1
        samples = scrape(metrics_port)
        assert daemon.stop() == 0

    assert fused_good >= 3, daemon.log()
    assert [s["state"] for s in statuses["good"]][:1] == ["running"]
    failed = [s for s in statuses["dead"] if s["state"] == "failed"]
    assert failed and all(s["previous"] in ("starting", "reconnecting") for s in failed)
    assert f"stream 'dead' ({dead_url}): cannot open" in failed[0]["detail"]
    assert "Connection refused" in failed[0]["detail"]
    assert "reconnecting" in [s["state"] for s in statuses["dead"]]

    def metric(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), -1.0)

    assert metric("tandem_stream_up", stream="good") == 1
    assert metric("tandem_stream_up", stream="dead") == 0
    assert metric("tandem_stream_state", stream="good", state="running") == 1
    dead_now = [
        s
        for s in ("failed", "reconnecting")
        if metric("tandem_stream_state", stream="dead", state=s)
    ]
    assert len(dead_now) == 1
    assert metric("tandem_stream_transitions_total", stream="dead", state="failed") >= 2
    assert metric("tandem_reconnects_total", stream="dead") >= 1
    assert f"stream dead: starting -> failed: stream 'dead' ({dead_url}): cannot open" in (
        daemon.log()
    )


def test_a_crashed_ingest_process_is_restarted_alone_and_its_timeline_goes_on(tandemd, tmp_path):
    """kill -9 one stream's ingest process: the other stream's windows show no gap, the
    killed stream comes back (tandemd restarts it) with its media time still rising."""
    import os
    import signal

    from tests.conftest import children_of, metric, wait_until

    pub, metrics_port = free_port(), free_port()
    text = config(tmp_path, pub, metrics_port, "unused").replace(
        'id = "dead"\nurl = "unused"',
        'id = "other"\nurl = "testsrc=size=320x240:rate=25[out0];sine=frequency=880[out1]"\n'
        'format = "lavfi"',
    )
    windows: dict[str, list[float]] = {"good": [], "other": []}
    with Subscriber(f"tcp://127.0.0.1:{pub}", ["fused."]) as sub:
        daemon = tandemd(text)

        def collect(seconds: float) -> bool:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                for _, record in sub.records(timeout_s=0.5):
                    windows[record["stream"]].append(record["window"]["start"])
                    break
            return False

        assert wait_until(lambda: collect(0.5) or len(windows["other"]) >= 3, 60), daemon.log()
        victim = next(
            pid
            for pid in children_of(daemon.proc.pid)
            if b"other" in Path(f"/proc/{pid}/cmdline").read_bytes()
            and b"daemon.ingest" in Path(f"/proc/{pid}/cmdline").read_bytes()
        )
        before = len(windows["other"])
        os.kill(victim, signal.SIGKILL)
        assert wait_until(
            lambda: (
                metric(metrics_port, "tandem_child_restarts_total", process="ingest-other") == 1
            ),
            20,
        )
        collect(8)
        assert daemon.stop() == 0
    good = windows["good"]
    assert good == [good[0] + i for i in range(len(good))], "the other stream never paused"
    after = windows["other"][before:]
    assert after, "the killed stream came back"
    assert windows["other"] == sorted(set(windows["other"])), "its media time kept rising"
