"""Cross-modal cascade with a real tandemd: a sound wakes an on-demand vision analyzer.

The stream is silent for 3 s, then a tone plays. The rule `tone` (audio level) enables
`blur`, an on-demand vision analyzer, for 2 s: before the tone no window carries blur,
then a run of windows does, then none again, and the action is counted done and expired.
"""

from __future__ import annotations

import time

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from daemon.control.server import ask
from daemon.publishing.subscriber import Subscriber
from daemon.wire import protocol
from daemon.workers.analyzers import WorkItem, build
from daemon.workers.batching import BatchRunner
from daemon.workers.device import make_runtime
from daemon.workers.metrics import WorkerMetrics
from tests.conftest import free_port, metric, wait_until
from tests.support.media import moving_square
from tests.support.schemas import validate

TONE_AT_S = 3.0
ON_FOR_S = 2.0


def config(tmp: object, pub: int, port: int) -> str:
    # sgn(floor(t/3)): 0 before 3 s, 1 after (a filtergraph without commas to escape).
    audio = "aevalsrc=exprs=0.5*sin(2*PI*440*t)*sgn(floor(t/3)):s=16000"
    return f"""
runtime_dir = "{tmp}/run"
[log]
digest_s = 0
[[streams]]
id = "cam"
url = "testsrc2=size=160x120:rate=10[out0];{audio}[out1]"
format = "lavfi"
fps = 5
width = 160
height = 120
[workers.vision]
count = 1
analyzers = ["motion", "blur"]
on_demand = ["blur"]
[workers.audio]
count = 1
analyzers = ["level"]
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = {port}
[[events]]
name = "tone"
when = {{analyzer = "level", output = "rms_dbfs", op = "gt", value = -30}}
actions = [{{do = "enable_analyzer", analyzer = "blur", for_s = {ON_FOR_S}}}]
"""


@pytest.mark.slow
def test_a_sound_wakes_an_on_demand_vision_analyzer_for_a_while(tandemd, tmp_path) -> None:
    pub, port = free_port(), free_port()
    windows: list[tuple[float, bool]] = []  # (window start, blur ran in it)
    status_said: set[tuple[str, ...]] = set()  # `tandem status`: the stream's analyzers_on
    control = f"ipc://{tmp_path}/run/control.sock"
    with Subscriber(f"tcp://127.0.0.1:{pub}", ["fused.cam"]) as sub:
        daemon = tandemd(config(tmp_path, pub, port))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (not windows or windows[-1][0] < 12):
            for _topic, record in sub.records(timeout_s=0.2):
                validate("fused", record)
                if record["video"]["results"]:
                    blur = "blur" in record["video"]["analyzers"]
                    windows.append((record["window"]["start"], blur))
                break
            if windows:
                [stream] = ask(control, {"type": "status"})["streams"]
                status_said.add(tuple(stream["analyzers_on"]))
    assert windows and windows[-1][0] >= 12, daemon.log()
    assert all(not blur for start, blur in windows if start + 1 <= TONE_AT_S), windows
    woken = [start for start, blur in windows if blur]
    assert woken, windows
    # One contiguous run, from the tone on, that ends: the action expired.
    assert woken[0] >= TONE_AT_S - 1, windows
    assert woken == [s for s, _ in windows if woken[0] <= s <= woken[-1]], windows
    assert woken[-1] - woken[0] <= ON_FOR_S + 2, windows
    assert not windows[-1][1], windows
    labels = {"stream": "cam", "action": "enable_analyzer"}
    assert metric(port, "tandem_actions_total", outcome="done", **labels) == 1
    assert wait_until(
        lambda: metric(port, "tandem_actions_total", outcome="expired", **labels) == 1, 5
    )
    assert "stream cam: analyzer blur on (event tone)" in daemon.log()
    assert status_said == {(), ("blur",)}


def test_the_runner_skips_an_analyzer_only_for_the_items_that_say_so() -> None:
    built = build(["motion", "blur"], "video", {})
    runner = BatchRunner(built, make_runtime("cpu"), WorkerMetrics(CollectorRegistry()))
    items = [
        WorkItem("a", "video", 0, 0.0, _frame(0), skip=frozenset({"blur"})),
        WorkItem("b", "video", 0, 0.0, _frame(1)),
    ]
    asleep, awake = runner.run(items)
    assert set(asleep.outputs) == {"motion"}
    assert set(awake.outputs) == {"motion", "blur"}


def test_skip_travels_only_when_set() -> None:
    item = protocol.VideoItem(
        v=protocol.PROTOCOL_VERSION,
        stream="a",
        seq=0,
        pts=0.0,
        duration=0.2,
        wall=0.0,
        shape=(2, 2, 3),
    )
    assert b"skip" not in protocol.encode(item)  # an older worker still reads it
    asleep = msgspec.structs.replace(item, skip=["blur"])
    decoded, _ = protocol.decode([protocol.encode(asleep), bytes(12)])
    assert isinstance(decoded, protocol.VideoItem) and decoded.skip == ["blur"]


def _frame(k: int):  # type: ignore[no-untyped-def]
    import torch

    return torch.from_numpy(moving_square(k, 64, 48))


def test_tandem_status_names_what_cascades_changed() -> None:
    from daemon.control.client import render

    stream = {"id": "cam", "state": "running", "rates": {}, "latency_s": 0.1}
    status = {
        "pid": 1,
        "uptime_s": 5.0,
        "ready": True,
        "healthy": True,
        "streams": [stream | {"requested_fps": 10.0, "analyzers_on": ["transcribe"]}],
        "workers": [],
        "queues": {},
        "processes": [],
    }
    assert "(cascade: fps 10, transcribe on)" in render(status)
    status["streams"] = [stream | {"requested_fps": None, "analyzers_on": []}]
    assert "cascade" not in render(status)
