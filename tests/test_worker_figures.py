"""A worker's figures reach tandemd's registry: real worker metrics reported in a
`worker_stats` message over a real ZeroMQ link are exported with `kind` and `worker`
labels while the worker is registered, and go when it is declared dead; a histogram that
is not cumulative is refused and counted."""

from __future__ import annotations

import time

import zmq
from prometheus_client import CollectorRegistry

from daemon.core.metrics import Metrics
from daemon.dispatch.dispatcher import Dispatcher
from daemon.wire import protocol
from daemon.wire.endpoints import bind_server
from daemon.workers.metrics import WorkerMetrics
from tests.conftest import wait_until
from tests.test_dispatcher import register


def test_worker_stats_are_exported_with_kind_and_worker_until_it_dies() -> None:
    ctx = zmq.Context()
    sock = bind_server(ctx, zmq.ROUTER, "tcp://127.0.0.1:*")
    registry = CollectorRegistry()
    disp = Dispatcher(
        sock, Metrics(registry), 100, 3, lambda r: True, lambda h: None, lambda h, r: None
    )
    dealer = register(ctx, disp, "h:7:vision", capacity=2)
    labels = {"kind": "vision", "worker": "h:7:vision"}
    assert registry.get_sample_value("tandem_worker_up", labels) == 1
    worker = WorkerMetrics(CollectorRegistry())
    worker.seed(["motion", "faces"])
    worker.inference.labels("motion").observe(0.004)
    worker.batch_size.labels("motion").observe(1)
    worker.errors.labels("faces").inc(3)
    worker.items.inc(2)
    dealer.send(protocol.encode(worker.stats()))

    def exported(name: str, **extra: str) -> float | None:
        disp.handle_incoming()
        return registry.get_sample_value(name, labels | extra)

    assert wait_until(lambda: exported("tandem_worker_items_total") == 2, 5)
    assert exported("tandem_worker_analyzer_errors_total", analyzer="faces") == 3
    assert exported("tandem_worker_analyzer_errors_total", analyzer="motion") == 0
    assert exported("tandem_worker_oom_retries_total", analyzer="faces") == 0
    assert exported("tandem_worker_inference_seconds_bucket", analyzer="motion", le="0.005") == 1
    assert exported("tandem_worker_inference_seconds_bucket", analyzer="motion", le="0.0025") == 0
    assert exported("tandem_worker_inference_seconds_count", analyzer="motion") == 1
    assert exported("tandem_worker_inference_seconds_sum", analyzer="motion") == 0.004
    assert exported("tandem_worker_batch_size_bucket", analyzer="faces", le="+Inf") == 0
    assert exported("tandem_worker_accelerator_memory_bytes") == 0

    # Not cumulative: refused as malformed, the figures kept as they were.
    bad = protocol.encode(worker.stats()).replace(b'"counts":[0,0,1', b'"counts":[0,2,1')
    assert bad != protocol.encode(worker.stats())
    dealer.send(bad)
    rejected = {"socket": "dispatch", "reason": "malformed"}
    assert wait_until(
        lambda: (
            exported("tandem_worker_items_total") == 2
            and registry.get_sample_value("tandem_messages_rejected_total", rejected) == 1
        ),
        5,
    )

    disp.tick(time.monotonic() + 1.0)  # silent for over 3 heartbeats of 0.1 s: dead
    assert registry.get_sample_value("tandem_worker_up", labels) is None
    assert registry.get_sample_value("tandem_worker_items_total", labels) is None
    assert registry.get_sample_value("tandem_worker_deaths_total", {"kind": "vision"}) == 1
    dealer.close()
    sock.close()
    ctx.term()
