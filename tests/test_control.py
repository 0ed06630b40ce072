"""A late subscriber asks a real tandemd for the events active now; typed subscriber API."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import msgspec
import pytest
import zmq

from daemon.control.server import ask
from daemon.publishing.subscriber import Event, Fused, Subscriber, active_events
from tests.conftest import ROOT, free_port, metric, wait_until
from tests.support.schemas import validate

pytestmark = pytest.mark.slow


def config(tmp, pub: int, port: int) -> str:
    return f"""
runtime_dir = "{tmp}/run"
[log]
digest_s = 0
[[streams]]
id = "cam"
url = "testsrc2=size=320x240:rate=25[out0];sine=frequency=500:sample_rate=16000[out1]"
format = "lavfi"
fps = 5
width = 160
height = 120
[workers.vision]
count = 1
[workers.audio]
count = 1
analyzers = ["level", "silence"]
on_demand = ["silence"]
[fusion]
max_actions_per_minute = 1
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = {port}
[[events]]
name = "moving"
min_duration_s = 0.4
when = {{analyzer = "motion", output = "score", op = "gt", value = 0.001}}
actions = [{{do = "raise_fps", fps = 10, for_s = 60}},
           {{do = "enable_analyzer", analyzer = "silence", for_s = 60}}]
[[events]]
name = "quiet"
when = {{analyzer = "level", output = "rms_dbfs", op = "lt", value = -60}}
[[events]]
name = "blip"  # starts and ends at once, and never again (`when` never goes false)
when = {{analyzer = "level", output = "rms_dbfs", op = "gt", value = -100}}
until = {{analyzer = "level", output = "rms_dbfs", op = "gt", value = -100}}
"""


def first_event(sub: Subscriber, timeout_s: float) -> Event:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for message in sub.messages(timeout_s=0.5):
            raw = msgspec.to_builtins(message)
            validate(raw["type"], raw)
            if isinstance(message, Event) and message.name == "moving":
                return message
            assert isinstance(message, Fused | Event)
            break
    raise AssertionError("no event")


def test_late_subscriber_gets_the_active_events(tandemd, tmp_path):
    pub, port = free_port(), free_port()
    control = f"ipc://{tmp_path}/run/control.sock"
    with Subscriber(f"tcp://127.0.0.1:{pub}", ["fused.", "event."]) as sub:
        daemon = tandemd(config(tmp_path, pub, port))
        started = first_event(sub, timeout_s=30)
    assert (started.name, started.edge, started.end) == ("moving", "start", None), daemon.log()

    # A subscriber that connects now missed that message: it asks.
    [active] = [e for e in active_events(control, timeout_s=5) if e.name == "moving"]
    assert (active.id, active.name, active.start, active.end) == (
        started.id,
        "moving",
        started.start,
        None,
    )
    validate("event", msgspec.to_builtins(active))
    assert active_events(control, stream="other") == []
    recent = ask(control, {"type": "recent_events", "stream": "cam"})
    [blip] = recent["events"]
    validate("event", blip)
    assert (blip["name"], blip["edge"], blip["ended_by"]) == ("blip", "end", "rule")

    # The cascade acted once; the ceiling (one per minute) refused the second action.
    done = {"stream": "cam", "action": "raise_fps", "outcome": "done"}
    assert wait_until(lambda: metric(port, "tandem_actions_total", **done) == 1, 5)
    refused = {"stream": "cam", "action": "enable_analyzer", "outcome": "refused"}
    assert metric(port, "tandem_actions_total", **refused) == 1
    assert "stream cam: analysis fps 10.0 (event moving)" in daemon.log()
    # ...and the stream's ingest process was told (the overload policy's path).
    assert metric(port, "tandem_stream_analysis_fps", stream="cam") == 10
    assert wait_until(lambda: "analysis fps of cam set to 10 by tandemd" in daemon.log(), 10)

    # Malformed or unknown requests are answered with an error and counted.
    assert ask(control, {"type": "reboot"})["type"] == "error"
    with zmq.Context() as ctx, ctx.socket(zmq.REQ) as req:
        req.setsockopt(zmq.LINGER, 0)
        req.connect(control)
        req.send(b"\xff not json")
        assert req.poll(5000) and json.loads(req.recv())["type"] == "error"
    assert wait_until(
        lambda: (
            metric(port, "tandem_messages_rejected_total", socket="control", reason="invalid") == 2
        ),
        5,
    )

    # `tandem watch --events` prints events too, through the same subscriber API; the
    # ongoing event is not replayed, so ask for records plus events and find records.
    watch = subprocess.run(
        [sys.executable, "-m", "daemon.cli.tandem", "watch", "--events", "--json", "--count", "3",
         "--endpoint", f"tcp://127.0.0.1:{pub}", "--timeout", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert watch.returncode == 0, watch.stderr
    for line in watch.stdout.splitlines():
        message = json.loads(line)
        validate(message["type"], message)
