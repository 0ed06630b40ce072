"""The vision worker's batching: frames of several streams reach one forward, the
out-of-memory path halves and retries, heartbeats flow during a long batch, and a
third-party analyzer registered through a Python entry point is found and run.

The out-of-memory and slow analyzers are a test plugin (below), installed the way a
third party would: a module and a dist-info with a `tandem.analyzers` entry point on
sys.path. The out-of-memory one raises torch.cuda.OutOfMemoryError above a batch size,
so the worker's real halving and retry code runs on a machine without a GPU.
"""

from __future__ import annotations

import contextlib
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import zmq
from prometheus_client import CollectorRegistry

from daemon.wire import protocol
from daemon.workers import worker as worker_module
from daemon.workers.analyzers import WorkItem, build, registry
from daemon.workers.batching import BatchRunner
from daemon.workers.device import make_runtime
from daemon.workers.metrics import WorkerMetrics
from daemon.workers.worker import BatchPolicy, Worker
from tests.support.media import moving_square
from tests.support.tiny_vision_models import tiny_detr

PLUGIN = '''
"""A third-party analyzer plugin for tandem's tests."""
import threading
import time
from typing import ClassVar

import torch
from pydantic import Field

from daemon.workers.analyzers.base import AnalyzerSpec, Options


class FlakyOptions(Options):
    fits: int = Field(2, ge=0)  # batches larger than this run out of memory
    sleep_s: float = 0.0
    garbage: bool = False  # answer with a value JSON cannot hold


class Flaky:
    name: ClassVar[str] = "flaky"
    modality: ClassVar[str] = "video"

    def __init__(self, options: FlakyOptions) -> None:
        self.options = options
        self.batches: list[int] = []
        self.threads: list[str] = []  # the thread each batch ran on

    def analyze(self, item):
        return self.analyze_batch([item])[0]

    def analyze_batch(self, items):
        if len(items) > self.options.fits:
            raise torch.cuda.OutOfMemoryError(f"{len(items)} items do not fit")
        time.sleep(self.options.sleep_s)
        self.batches.append(len(items))
        self.threads.append(threading.current_thread().name)
        if self.options.garbage:
            return [{"mean": object()} for i in items]
        return [{"mean": float(i.tensor.float().mean())} for i in items]


SPEC = AnalyzerSpec("flaky", "video", "tandem_flaky_plugin:Flaky", FlakyOptions,
                    outputs={"mean": "number"})
'''


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[None]:
    (tmp_path / "tandem_flaky_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "tandem_flaky_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tandem-flaky-plugin\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        textwrap.dedent("""
        [tandem.analyzers]
        flaky = tandem_flaky_plugin:SPEC
        """)
    )
    sys.path.insert(0, str(tmp_path))
    registry.specs.cache_clear()
    yield
    sys.path.remove(str(tmp_path))
    sys.modules.pop("tandem_flaky_plugin", None)
    registry.specs.cache_clear()


def items(n: int, streams: int) -> list[WorkItem]:
    return [
        WorkItem(
            f"cam{k % streams}",
            "video",
            k // streams,
            k // streams * 0.2,
            torch.from_numpy(moving_square(k, 320, 240)),
            duration=0.2,
        )
        for k in range(n)
    ]


def sample(metrics: WorkerMetrics, name: str, analyzer: str) -> float:
    value = metrics.registry.get_sample_value(name, {"analyzer": analyzer})
    return 0.0 if value is None else value


def test_entry_point_plugin_is_found_and_built(plugin: None) -> None:
    assert "flaky" in registry.available("video")
    (flaky,) = build(["flaky"], "video", {"flaky": {"fits": 4}})
    assert flaky.analyze(items(1, 1)[0])["mean"] > 0


def test_out_of_memory_halves_the_batch_and_retries(plugin: None) -> None:
    (flaky,) = build(["flaky"], "video", {"flaky": {"fits": 2}})
    metrics = WorkerMetrics(CollectorRegistry())
    runner = BatchRunner([flaky], make_runtime("cpu"), metrics)
    answers = runner.run(items(8, streams=4))
    assert all("flaky" in a.outputs and not a.errors for a in answers)
    assert flaky.batches == [2, 2, 2, 2]  # type: ignore[attr-defined]
    assert sample(metrics, "tandem_worker_oom_retries_total", "flaky") == 3  # 8, then 4 and 4
    assert sample(metrics, "tandem_worker_batch_size_count", "flaky") == 4


def test_out_of_memory_on_one_item_is_an_error_not_a_crash(plugin: None) -> None:
    (flaky,) = build(["flaky"], "video", {"flaky": {"fits": 0}})
    (motion,) = build(["motion"], "video")
    runner = BatchRunner([flaky, motion], make_runtime("cpu"), WorkerMetrics(CollectorRegistry()))
    answers = runner.run(items(2, streams=2))
    assert all(a.errors["flaky"].startswith("OutOfMemoryError") for a in answers)
    assert all("motion" in a.outputs for a in answers)  # the other analyzer still answered


class FakeTandemd:
    """tandemd's side of the worker link, reduced to a ROUTER in the test."""

    def __init__(self) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.identity = b""
        self.heartbeats = 0

    def recv(self, timeout_s: float = 30.0) -> protocol.Message:
        assert self.sock.poll(int(timeout_s * 1000)), "the worker said nothing"
        identity, *frames = self.sock.recv_multipart()
        self.identity = identity
        msg, _ = protocol.decode(frames)
        if isinstance(msg, protocol.Heartbeat):
            self.heartbeats += 1
        return msg

    def register(self) -> protocol.Register:
        msg = self.recv()
        assert isinstance(msg, protocol.Register)
        welcome = protocol.Welcome(v=protocol.PROTOCOL_VERSION, heartbeat_ms=100, liveness=3)
        self.sock.send_multipart([self.identity, protocol.encode(welcome)])
        return msg

    def send(self, item: WorkItem, skip: list[str] | None = None) -> None:
        array = item.tensor.numpy()
        header = protocol.VideoItem(v=protocol.PROTOCOL_VERSION, stream=item.stream,
                                    seq=item.seq, pts=item.pts, duration=0.2,
                                    wall=time.time(), shape=array.shape,
                                    skip=skip or [])  # fmt: skip
        self.sock.send_multipart([self.identity, protocol.encode(header), array.tobytes()])

    def results(self, n: int) -> list[protocol.Result]:
        out: list[protocol.Result] = []
        while len(out) < n:
            msg = self.recv()
            if isinstance(msg, protocol.Result):
                out.append(msg)
            elif isinstance(msg, protocol.Results):
                out.extend(msg.results)
        return out

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


@contextlib.contextmanager
def running_worker(
    runner: BatchRunner, endpoint: str, policy: BatchPolicy, capacity: int
) -> Iterator[Worker]:
    """A worker on a thread of this process, stopped and joined on the way out: none
    outlives its test."""
    worker = Worker(endpoint, "vision", runner, capacity, 100, 3, policy)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.request_stop()
        thread.join(10)
        assert not thread.is_alive(), "the worker did not stop"


@contextlib.contextmanager
def serving(analyzers: list[Any], capacity: int = 1) -> Iterator[FakeTandemd]:
    """A worker on a thread of this process (one item a batch), registered with a
    FakeTandemd."""
    runner = BatchRunner(analyzers, make_runtime("cpu"), WorkerMetrics(CollectorRegistry()))
    tandemd = FakeTandemd()
    try:
        with running_worker(runner, tandemd.endpoint, BatchPolicy(1, 0), capacity):
            tandemd.register()
            yield tandemd
    finally:
        tandemd.close()


def test_frames_of_several_streams_reach_one_forward(tmp_path: Path) -> None:
    detr = tiny_detr(tmp_path / "detr")
    analyzers = build(["objects", "motion"], "video", {"objects": {"model": str(detr)}})
    metrics = WorkerMetrics(CollectorRegistry())
    runner = BatchRunner(analyzers, make_runtime("cpu"), metrics)
    tandemd = FakeTandemd()
    # A long max_wait: batches form because max_batch items are there, not by time.
    try:
        with running_worker(runner, tandemd.endpoint, BatchPolicy(4, 60_000), capacity=8):
            assert tandemd.register().capacity == 8
            sent = items(8, streams=4)  # cam0..cam3 interleaved: any 4 in a row span 4 streams
            for item in sent:
                tandemd.send(item)
            results = tandemd.results(8)
    finally:
        tandemd.close()
    assert sorted((r.stream, r.seq) for r in results) == sorted((i.stream, i.seq) for i in sent)
    assert all(set(r.outputs) == {"objects", "motion"} and not r.errors for r in results)
    assert sample(metrics, "tandem_worker_batch_size_count", "objects") == 2
    assert sample(metrics, "tandem_worker_batch_size_sum", "objects") == 8
    assert (
        metrics.registry.get_sample_value(
            "tandem_worker_batch_size_bucket", {"analyzer": "objects", "le": "2.0"}
        )
        == 0
    )


def test_heartbeats_flow_during_a_long_batch(plugin: None) -> None:
    (slow,) = build(["flaky"], "video", {"flaky": {"fits": 8, "sleep_s": 1.0}})
    with serving([slow]) as tandemd:
        tandemd.send(items(1, 1)[0])
        before = tandemd.heartbeats
        (result,) = tandemd.results(1)
        during = tandemd.heartbeats - before
    assert result.outputs["flaky"]["mean"] > 0
    # A 1 s batch with 100 ms heartbeats: tandemd's liveness (3 missed) never runs out.
    assert during >= 3


def one_at_a_time(tandemd: FakeTandemd, frames: list[WorkItem], skip: list[str]) -> None:
    for item in frames:
        tandemd.send(item, skip)
        tandemd.results(1)


def test_short_batches_move_to_the_loop_and_a_new_analyzer_set_starts_on_the_thread(
    plugin: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The threshold is raised so that the rule, not this machine's speed, decides.
    monkeypatch.setattr(worker_module, "INLINE_MAX_S", 5.0)
    flaky, motion = build(["flaky", "motion"], "video", {"flaky": {"fits": 8}})
    n = worker_module.INLINE_AFTER
    frames = items(n + 3, 1)
    with serving([flaky, motion]) as tandemd:
        one_at_a_time(tandemd, frames[: n + 2], skip=["motion"])
        one_at_a_time(tandemd, frames[n + 2 :], skip=[])  # on-demand motion switched on
    on_thread = [name == "batches" for name in flaky.threads]
    # n batches of {flaky} on the batch thread, then on the loop; {flaky, motion} is new.
    assert on_thread == [True] * n + [False, False] + [True], flaky.threads


def test_batches_longer_than_the_threshold_stay_on_the_thread(
    plugin: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "INLINE_MAX_S", 0.005)
    (slow,) = build(["flaky"], "video", {"flaky": {"fits": 8, "sleep_s": 0.01}})
    with serving([slow]) as tandemd:
        one_at_a_time(tandemd, items(worker_module.INLINE_AFTER + 4, 1), skip=[])
    assert set(slow.threads) == {"batches"}


def test_outputs_json_cannot_hold_are_that_analyzers_error_not_a_crash(plugin: None) -> None:
    built = build(["flaky", "motion"], "video", {"flaky": {"fits": 8, "garbage": True}})
    with serving(built, capacity=2) as tandemd:
        for item in items(2, 1):
            tandemd.send(item)
        results = tandemd.results(2)
    for result in results:
        assert "flaky" not in result.outputs
        assert result.errors["flaky"].startswith("outputs not JSON values")
        assert "score" in result.outputs["motion"]  # the other analyzer's answer is kept
