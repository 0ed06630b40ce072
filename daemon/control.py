"""`tandem status`: what tandemd answers to a `status` request on its control socket
(daemon/publishing/control.py: the request/reply protocol, shared with fusion's events).

The answer only reads state; the socket is polled from tandemd's main loop.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from prometheus_client.metrics import MetricWrapperBase

from daemon.publishing.control import ask
from daemon.vocabulary import KINDS

if TYPE_CHECKING:
    from daemon.service import Tandemd

log = logging.getLogger("control")
RATE_WINDOW_S = 10.0  # rates in `status` are averages over about this long


class Rates:
    """Per-stream rates of counters in tandemd's registry, sampled about once a second."""

    def __init__(self, service: Tandemd) -> None:
        self.service = service
        self.samples: deque[tuple[float, dict[str, dict[str, float]]]] = deque()

    def tick(self, now: float) -> None:
        if self.samples and now - self.samples[-1][0] < 1.0:
            return
        self.samples.append((now, self._counts()))
        while len(self.samples) > 2 and now - self.samples[1][0] > RATE_WINDOW_S:
            self.samples.popleft()

    def per_second(self, stream: str) -> dict[str, float]:
        if len(self.samples) < 2:
            return {}
        (t0, first), (t1, last) = self.samples[0], self.samples[-1]
        before, after = first.get(stream, {}), last.get(stream, {})
        return {k: round((v - before.get(k, 0.0)) / (t1 - t0), 3) for k, v in after.items()}

    def _counts(self) -> dict[str, dict[str, float]]:
        """Reads the two counters alone: collecting the whole registry costs about half a
        millisecond per stream, a stall of tandemd's loop every second."""
        metrics = self.service.metrics
        out: dict[str, dict[str, float]] = {s.id: {} for s in self.service.config.streams}
        for name, labels, value in _samples(metrics.items_received, metrics.fused):
            if not name.endswith("_total") or labels["stream"] not in out:
                continue  # counters also carry a `_created` sample
            key = "records" if name == "tandem_fused_records_total" else f"{labels['modality']}_in"
            out[labels["stream"]][key] = value
        return out


def _samples(*metrics: MetricWrapperBase) -> list[tuple[str, dict[str, str], float]]:
    return [
        (sample.name, sample.labels, sample.value)
        for metric in metrics
        for family in metric.collect()
        for sample in family.samples
    ]


def status(service: Tandemd, rates: Rates) -> dict[str, Any]:
    """What `tandem status` shows: streams, workers, queues, local processes, rates."""
    now = time.monotonic()
    states = {
        labels["stream"]: labels["state"]
        for _, labels, value in _samples(service.metrics.stream_state)
        if value == 1
    }
    streams = []
    for s in service.config.streams:
        kept = service.pipeline.streams.get(s.id)  # None for a moment while reloaded
        record = kept.last_record if kept is not None else None
        streams.append(
            {
                "id": s.id,
                "mode": s.mode,
                "state": states.get(s.id, "unknown"),
                "rates": rates.per_second(s.id),
                "latency_s": record.get("latency_s") if record else None,
                # What cascades changed for now: the fps asked for, on-demand analyzers on.
                "requested_fps": kept.requested_fps if kept is not None else None,
                "analyzers_on": sorted(kept.requested_analyzers) if kept is not None else [],
            }
        )
    workers = [
        {
            "name": p.name,
            "kind": p.kind,
            "capacity": p.capacity,
            "inflight": len(p.inflight),
            "analyzers": p.analyzers,
            "last_heard_s": round(now - p.last_heard, 3),
        }
        for p in service.dispatcher.peers.values()
    ]
    processes = [
        {"name": c.name, "pid": c.last_pid, "alive": c.proc is not None, "given_up": c.given_up}
        for c in service.children.children.values()
    ]
    queues = {
        k: {"queued": service.dispatcher.queued(k), "inflight": service.dispatcher.inflight(k)}
        for k in KINDS
    }
    return {
        "pid": os.getpid(),
        "uptime_s": round(now - service.started_at, 3),
        "ready": service.ingest_started,
        "healthy": service.ops.healthy(),
        "streams": streams,
        "workers": workers,
        "queues": queues,
        "processes": processes,
        "cluster": _cluster(service),
    }


def _cluster(service: Tandemd) -> dict[str, Any] | None:
    """With [cluster]: this shard, the Ready members it sees and who owns which stream
    in its view (every shard computes the same from the same members)."""
    shard = service.shard
    if shard is None:
        return None
    members = sorted(shard.members) if shard.members is not None else None
    return {"self": shard.this, "members": members, "owners": shard.owners()}


def request(endpoint: str, body: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
    """One request to tandemd's control socket; raises TimeoutError when no answer."""
    return ask(endpoint, body, timeout_s)


def control_endpoint(runtime_dir: str, endpoint: str) -> str:
    """The configured endpoint, else an ipc socket in the runtime directory."""
    return endpoint or f"ipc://{runtime_dir}/control.sock"


def start_control(service: Tandemd) -> Rates:
    """Answer `status` on tandemd's control socket (bound by the service)."""
    rates = Rates(service)
    service.control.handle("status", lambda _request: status(service, rates))
    return rates
