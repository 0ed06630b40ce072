"""A worker's own Prometheus metrics, served on its optional `--metrics-port`.

Workers have no link to tandemd's registry (they may run on other hosts), so each one
serves its own /metrics; Prometheus scrapes them as separate targets. See docs/metrics.md.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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


def serve(metrics: WorkerMetrics, port: int, host: str = "127.0.0.1") -> int:
    """Serve /metrics; returns the bound port (port 0 picks a free one)."""
    server, _ = start_http_server(port, addr=host, registry=metrics.registry)
    return int(server.server_port)
