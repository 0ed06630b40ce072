"""A worker's own Prometheus metrics: reported to tandemd with every heartbeat (a
`worker_stats` message, which tandemd exports with a `worker` label), and served on the
worker's optional `--metrics-port` for those who scrape workers too. See docs/metrics.md.
"""

from __future__ import annotations

import math
from collections import defaultdict

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from daemon.wire import protocol

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.items = Counter(
            "tandem_worker_items_total", "Items answered by this worker.", registry=registry
        )
        self.batch_size = Histogram(
            "tandem_worker_batch_size",
            "Items per forward call of a batching analyzer (after any out-of-memory split).",
            ["analyzer"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.inference = Histogram(
            "tandem_worker_inference_seconds",
            "Time an analyzer spent on one batch of items.",
            ["analyzer"],
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "tandem_worker_analyzer_errors_total",
            "Items an analyzer failed on (the result carries the error).",
            ["analyzer"],
            registry=registry,
        )
        self.oom_retries = Counter(
            "tandem_worker_oom_retries_total",
            "Batches split in half and retried after the accelerator ran out of memory.",
            ["analyzer"],
            registry=registry,
        )
        self.gated = Counter(
            "tandem_worker_gated_frames_total",
            "Frames a motion-gated analyzer skipped (no motion): inference saved.",
            ["analyzer"],
            registry=registry,
        )
        self.region_frames = Counter(
            "tandem_worker_region_frames_total",
            "Frames a region-gated detector ran on the changed region only.",
            ["analyzer"],
            registry=registry,
        )
        self.region_pixels_saved = Counter(
            "tandem_worker_region_pixels_saved_total",
            "Pixels of region-gated frames the model did not see (the frame less the region).",
            ["analyzer"],
            registry=registry,
        )
        self.accelerator_memory = Gauge(
            "tandem_worker_accelerator_memory_bytes",
            "Accelerator memory held by this worker's tensors (0 on the CPU).",
            registry=registry,
        )

    def seed(self, analyzers: list[str]) -> None:
        """Every analyzer's series at 0 from the start, so its panels have data."""
        for name in analyzers:
            for labelled in (self.batch_size, self.inference, *self._counters().values()):
                labelled.labels(name)

    def _counters(self) -> dict[str, Counter]:
        """AnalyzerStats field -> counter."""
        return {
            "errors": self.errors,
            "oom_retries": self.oom_retries,
            "gated": self.gated,
            "region_frames": self.region_frames,
            "region_pixels_saved": self.region_pixels_saved,
        }

    def stats(self) -> protocol.WorkerStats:
        """The `worker_stats` message: every figure as it stands now."""
        fields: dict[str, dict[str, object]] = defaultdict(dict)
        for field, histogram in (("inference", self.inference), ("batch_size", self.batch_size)):
            for analyzer, state in _histograms(histogram).items():
                fields[analyzer][field] = state
        for field, counter in self._counters().items():
            for sample in _samples(counter, "_total"):
                fields[sample[0]][field] = int(sample[1])
        analyzers = {
            name: protocol.AnalyzerStats(**values)  # type: ignore[arg-type]
            for name, values in fields.items()
            if "inference" in values and "batch_size" in values
        }
        return protocol.WorkerStats(
            v=protocol.PROTOCOL_VERSION,
            items=int(_value(self.items, "_total")),
            accelerator_memory_bytes=int(_value(self.accelerator_memory, "")),
            analyzers=analyzers,
        )


def serve(metrics: WorkerMetrics, port: int, host: str = "127.0.0.1") -> int:
    """Serve /metrics; returns the bound port (port 0 picks a free one)."""
    server, _ = start_http_server(port, addr=host, registry=metrics.registry)
    return int(server.server_port)


def _samples(metric: Counter | Histogram, suffix: str) -> list[tuple[str, float, str]]:
    """(analyzer, value, le) of the samples of `metric` named with `suffix`."""
    return [
        (s.labels["analyzer"], s.value, s.labels.get("le", ""))
        for family in metric.collect()
        for s in family.samples
        if s.name.endswith(suffix)
    ]


def _value(metric: Counter | Gauge, suffix: str) -> float:
    """The one sample of an unlabelled metric."""
    family = next(iter(metric.collect()))
    return next(s.value for s in family.samples if s.name == family.name + suffix)


def _histograms(histogram: Histogram) -> dict[str, protocol.HistogramStats]:
    buckets: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for analyzer, value, le in _samples(histogram, "_bucket"):
        buckets[analyzer].append((float(le), int(value)))
    sums = {analyzer: value for analyzer, value, _ in _samples(histogram, "_sum")}
    out = {}
    for analyzer, pairs in buckets.items():
        finite = sorted(p for p in pairs if not math.isinf(p[0]))
        out[analyzer] = protocol.HistogramStats(
            le=[le for le, _ in finite],
            counts=[count for _, count in finite],
            count=max(count for _, count in pairs),
            sum=sums.get(analyzer, 0.0),
        )
    return out
