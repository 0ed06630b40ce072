"""Transport: tandemd's dispatcher to a real worker process, against raw pyzmq PUSH/PULL
of the same payload between two processes, over ipc and tcp, in the same run.

Ours is the whole round trip a frame takes: header encode and validation, credit-based
flow control, the worker decoding the item into a tensor and answering with a result
that tandemd validates. The worker runs no analyzer, so only transport is measured.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import tempfile
import time
from typing import Any

import numpy as np
import zmq
from prometheus_client import CollectorRegistry

from bench.core import Row, median_pair, row
from daemon.core.metrics import Metrics
from daemon.dispatch.dispatcher import Dispatcher
from daemon.dispatch.peers import Held
from daemon.runtime.allocator import freeze_startup_objects, keep_frame_buffers
from daemon.wire import protocol
from daemon.wire.endpoints import bind_server

SIZES = {"640x360": (360, 640), "1280x720": (720, 1280)}
CAPACITY = 64


def _raw_pull(endpoint: str, count: int, last_at: Any) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.connect(endpoint)
    for _ in range(count):
        sock.recv(copy=False)
    last_at.value = time.monotonic()  # CLOCK_MONOTONIC: one clock for both processes
    sock.close()
    ctx.term()


def raw_push_pull(endpoint: str, payload: np.ndarray, count: int) -> float:
    """Messages per second from a PUSH here to a PULL in another process."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.bind(endpoint)
    spawn = mp.get_context("spawn")
    last_at = spawn.Value("d", 0.0)
    receiver = spawn.Process(target=_raw_pull, args=(endpoint, count + 1, last_at))
    receiver.start()
    sock.send(payload, copy=False)  # blocks until the peer is connected: not timed
    start = time.monotonic()
    for _ in range(count):
        sock.send(payload, copy=False)
    receiver.join()  # the clock stops when the last message arrived, not at the exit
    seconds = last_at.value - start
    sock.close(linger=0)
    ctx.term()
    return count / seconds


def _worker(endpoint: str) -> None:
    from prometheus_client import CollectorRegistry

    from daemon.runtime.allocator import freeze_startup_objects, keep_frame_buffers
    from daemon.workers.batching import BatchRunner
    from daemon.workers.device import make_runtime
    from daemon.workers.metrics import WorkerMetrics
    from daemon.workers.worker import BatchPolicy, Worker

    keep_frame_buffers()  # as `tandem worker` does

    runner = BatchRunner([], make_runtime("cpu"), WorkerMetrics(CollectorRegistry()))
    freeze_startup_objects()  # after warm-up, as `tandem worker` does
    # A batch is whatever has arrived (max_wait_ms 0), as a GPU worker runs. With no
    # analyzers every batch is short, so after the first few they run on the socket loop
    # rather than the batch thread (daemon/workers/worker.py), as any quick set does.
    Worker(endpoint, "vision", runner, CAPACITY, batching=BatchPolicy(CAPACITY, 0.0)).run()


def dispatched(endpoint: str, payload: np.ndarray, count: int) -> float:
    """Items per second through the real Dispatcher to a real worker and back."""
    keep_frame_buffers()  # as tandemd does (the raw reference's processes are left as is)
    ctx = zmq.Context()
    answered = 0

    def on_released(_: Held) -> None:
        nonlocal answered
        answered += 1

    sock = bind_server(ctx, zmq.ROUTER, endpoint, max_bytes=64 << 20)
    disp = Dispatcher(
        sock,
        Metrics(CollectorRegistry()),
        1000,
        3,
        on_result=lambda r: True,
        on_released=on_released,
        on_lost=lambda h, r: None,
    )
    worker = mp.get_context("spawn").Process(target=_worker, args=(disp.endpoint,))
    worker.start()
    # Bounded: a worker that dies (or never connects) fails the run instead of hanging it.
    deadline = time.monotonic() + 60
    while not disp.peers:
        if not worker.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("bench transport: the worker process did not connect")
        disp.handle_incoming()
        time.sleep(0.01)
    freeze_startup_objects()  # as tandemd does before its loop
    h, w, _ = payload.shape
    frame = zmq.Frame(payload)
    poller = zmq.Poller()  # registered once, as tandemd's loop does (sock.poll builds one)
    poller.register(sock, zmq.POLLIN)
    queued = 0
    start = time.perf_counter()
    while answered < count:
        # Items come in as answers free room, as streams feed tandemd: its queues are
        # bounded (config `queue`), so a run's every item queued at once is no real state.
        for _ in range(min(count - queued, CAPACITY - disp.queued("vision"))):
            header = protocol.VideoItem(
                v=protocol.PROTOCOL_VERSION,
                stream="bench",
                seq=queued,
                pts=queued / 30,
                duration=1 / 30,
                wall=time.time(),
                shape=(h, w, 3),
            )
            disp.enqueue(Held(header, frame, time.monotonic()))
            queued += 1
        disp.dispatch()
        if poller.poll(100):
            disp.handle_incoming()
        elif not worker.is_alive() or time.monotonic() - deadline > 300:
            # Checked only when nothing came: a wait(2) per turn is the harness's cost,
            # not the transport's, and the raw reference pays none.
            raise RuntimeError(f"bench transport: worker gone after {answered}/{count}")
    seconds = time.perf_counter() - start
    worker.terminate()
    worker.join()
    sock.close()
    ctx.term()
    return count / seconds


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    tmp = tempfile.mkdtemp(prefix="tandem-bench-")
    pairs = 3 if quick else 5
    for label, (h, w) in SIZES.items():
        payload = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
        count = (1000 if quick else 3000) * (4 if h == 360 else 1)
        for transport in ("ipc", "tcp"):
            # On a 2-core VM each side swings by a quarter between runs (where the four
            # busy threads land, the host's other tenants): see bench.core.median_pair.
            runs = [
                (
                    raw_push_pull(_fixed(_endpoint(transport, tmp, 0)), payload, count),
                    dispatched(_endpoint(transport, tmp, 1), payload, count),
                )
                for _ in range(pairs)
            ]
            raw, ours = median_pair(runs)
            spread = " ".join(f"{o / r:.2f}" for r, o in runs)
            print(f"transport {label} {transport}: pair ratios {spread}", file=sys.stderr)
            gb = payload.nbytes / 1e9
            rows.append(
                row(f"transport {label} {transport}", ours, "frames/s", "raw pyzmq PUSH/PULL", raw)
            )
            rows.append(
                row(
                    f"transport {label} {transport}",
                    ours * gb,
                    "GB/s",
                    "raw pyzmq PUSH/PULL",
                    raw * gb,
                )
            )
    return rows


def _endpoint(transport: str, tmp: str, n: int) -> str:
    return f"ipc://{tmp}/b{n}.sock" if transport == "ipc" else "tcp://127.0.0.1:*"


def _fixed(endpoint: str) -> str:
    """PUSH/PULL needs a concrete port for the receiver process to connect to."""
    if endpoint.endswith(":*"):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return f"tcp://127.0.0.1:{s.getsockname()[1]}"
    return endpoint
