"""`tandem status`: what tandemd answers to a `status` request on its control socket
(daemon/control/server.py: the request/reply protocol, shared with fusion's events).

The answer only reads state; the socket is polled from tandemd's main loop.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from prometheus_client.metrics import MetricWrapperBase

from daemon.control.server import ask
from daemon.core.metrics import Metrics
from daemon.core.snapshot import ServiceSnapshot

if TYPE_CHECKING:
    from daemon.core.service import Tandemd

log = logging.getLogger("control")
RATE_WINDOW_S = 10.0  # rates in `status` are averages over about this long


class Rates:
    """Per-stream rates of counters in tandemd's registry, sampled about once a second."""

    def __init__(self, metrics: Metrics, stream_ids: Callable[[], list[str]]) -> None:
        self.metrics = metrics
        self.stream_ids = stream_ids
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
        out: dict[str, dict[str, float]] = {stream: {} for stream in self.stream_ids()}
        for name, labels, value in _samples(self.metrics.items_received, self.metrics.fused):
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


def status(snapshot: ServiceSnapshot, rates: Rates) -> dict[str, Any]:
    """What `tandem status` shows: the service's snapshot, each stream with its rates."""
    answer: dict[str, Any] = msgspec.to_builtins(snapshot)
    for stream in answer["streams"]:
        stream["rates"] = rates.per_second(stream["id"])
    return answer


def request(endpoint: str, body: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
    """One request to tandemd's control socket; raises TimeoutError when no answer."""
    return ask(endpoint, body, timeout_s)


def control_endpoint(runtime_dir: str, endpoint: str) -> str:
    """The configured endpoint, else an ipc socket in the runtime directory."""
    return endpoint or f"ipc://{runtime_dir}/control.sock"


def start_control(service: Tandemd) -> Rates:
    """Answer `status` on tandemd's control socket (bound by the service)."""
    rates = Rates(service.metrics, lambda: [s.id for s in service.config.streams])
    service.control.handle("status", lambda _request: status(service.snapshot(), rates))
    return rates
