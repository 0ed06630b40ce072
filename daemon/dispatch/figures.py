"""Workers' own figures, exported by tandemd: what each registered worker last reported
in a `worker_stats` message (inference time and batch size per analyzer, analyzer
errors, out-of-memory retries, gated frames, accelerator memory), under the worker's own
metric names with `kind` and `worker` labels added; and `tandem_worker_up`.

A worker's series exist while it is registered and go when it is declared dead or
exits; its counters start over when it restarts (a new worker name: host:pid:kind).
A prometheus_client collector: the dispatcher writes from tandemd's loop, scrapes read
from the metrics server's thread, under one lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from daemon.wire.protocol import AnalyzerStats, HistogramStats, WorkerStats

LABELS = ["kind", "worker"]
# AnalyzerStats field -> (metric name, help), as the worker's own (daemon/workers/metrics.py)
HISTOGRAMS = {
    "inference": ("tandem_worker_inference_seconds", "Time an analyzer spent on one batch."),
    "batch_size": ("tandem_worker_batch_size", "Items per forward call of an analyzer."),
}
COUNTERS = {
    "errors": ("tandem_worker_analyzer_errors", "Items an analyzer failed on."),
    "oom_retries": ("tandem_worker_oom_retries", "Batches halved after running out of memory."),
    "gated": ("tandem_worker_gated_frames", "Frames a motion-gated analyzer skipped."),
    "region_frames": ("tandem_worker_region_frames", "Frames a detector ran on a region of."),
    "region_pixels_saved": (
        "tandem_worker_region_pixels_saved",
        "Pixels of region-gated frames the model did not see.",
    ),
}


class WorkerFigures:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._lock = threading.Lock()
        self._kinds: dict[str, str] = {}  # worker name -> kind, while registered
        self._stats: dict[str, WorkerStats] = {}
        registry.register(self)

    def registered(self, worker: str, kind: str) -> None:
        with self._lock:
            self._kinds[worker] = kind

    def update(self, worker: str, stats: WorkerStats) -> None:
        with self._lock:
            if worker in self._kinds:
                self._stats[worker] = stats

    def forget(self, worker: str) -> None:
        with self._lock:
            self._kinds.pop(worker, None)
            self._stats.pop(worker, None)

    def describe(self) -> Iterator[Metric]:
        """The families, without samples (the registry's names; the docs' catalogue)."""
        return self._families({}, {})

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            kinds, stats = dict(self._kinds), dict(self._stats)
        return self._families(kinds, stats)

    def _families(self, kinds: dict[str, str], stats: dict[str, WorkerStats]) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "tandem_worker_up", "1 for each worker registered with tandemd.", labels=LABELS
        )
        items = CounterMetricFamily("tandem_worker_items", "Items answered.", labels=LABELS)
        memory = GaugeMetricFamily(
            "tandem_worker_accelerator_memory_bytes",
            "Accelerator memory held by the worker's tensors (0 on the CPU).",
            labels=LABELS,
        )
        for worker, kind in sorted(kinds.items()):
            up.add_metric([kind, worker], 1)
            if (reported := stats.get(worker)) is not None:
                items.add_metric([kind, worker], reported.items)
                memory.add_metric([kind, worker], reported.accelerator_memory_bytes)
        yield from (up, items, memory)
        per_analyzer = [(kinds[w], w, s.analyzers) for w, s in sorted(stats.items()) if w in kinds]
        for field, (name, text) in HISTOGRAMS.items():
            histogram = HistogramMetricFamily(name, text, labels=[*LABELS, "analyzer"])
            for kind, worker, analyzers in per_analyzer:
                for analyzer, figures in sorted(analyzers.items()):
                    state: HistogramStats = getattr(figures, field)
                    histogram.add_metric(
                        [kind, worker, analyzer], _buckets(state), sum_value=state.sum
                    )
            yield histogram
        for field, (name, text) in COUNTERS.items():
            counter = CounterMetricFamily(name, text, labels=[*LABELS, "analyzer"])
            for kind, worker, analyzers in per_analyzer:
                for analyzer, figures in sorted(analyzers.items()):
                    counter.add_metric([kind, worker, analyzer], _count(figures, field))
            yield counter


def _count(figures: AnalyzerStats, field: str) -> int:
    value: int = getattr(figures, field)
    return value


def _buckets(state: HistogramStats) -> list[tuple[str, float]]:
    finite = [(_le(le), float(count)) for le, count in zip(state.le, state.counts, strict=True)]
    return [*finite, ("+Inf", float(state.count))]


def _le(bound: float) -> str:
    """As prometheus_client writes a bucket bound: 0.005, 1.0, 128.0."""
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]
