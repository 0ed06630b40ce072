"""tandemd's Prometheus metrics, on a registry passed in (tests use a fresh one).

Names follow Prometheus conventions: base units, `_total` on counters. Labels are
bounded: per stream, per worker kind, per reason; never per frame. See docs/metrics.md.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform

import zmq
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.metrics import MetricWrapperBase

from daemon.dispatch.figures import WorkerFigures

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.frames_decoded = Counter(
            "tandem_frames_decoded_total",
            "Video frames decoded by ingest.",
            ["stream"],
            registry=registry,
        )
        self.frames_sampled = Counter(
            "tandem_frames_sampled_total",
            "Video frames kept at the analysis fps, scaled and converted.",
            ["stream"],
            registry=registry,
        )
        self.audio_chunks = Counter(
            "tandem_audio_chunks_total",
            "Audio chunks cut at the worker rate by ingest.",
            ["stream"],
            registry=registry,
        )
        self.decode_errors = Counter(
            "tandem_decode_errors_total",
            "Packets that failed to decode and were skipped.",
            ["stream"],
            registry=registry,
        )
        self.dropped = Counter(
            "tandem_frames_dropped_total",
            "Items dropped before analysis, by reason.",
            ["stream", "modality", "reason"],
            registry=registry,
        )
        self.items_received = Counter(
            "tandem_items_received_total",
            "Items tandemd received from ingest.",
            ["stream", "modality"],
            registry=registry,
        )
        self.items_dispatched = Counter(
            "tandem_items_dispatched_total",
            "Items sent to workers (re-sends included).",
            ["kind"],
            registry=registry,
        )
        self.results = Counter(
            "tandem_results_total",
            "Results received from workers and used.",
            ["kind"],
            registry=registry,
        )
        self.results_discarded = Counter(
            "tandem_results_discarded_total",
            "Results not used: duplicate, unknown item, or late for their window.",
            ["kind", "reason"],
            registry=registry,
        )
        self.items_lost = Counter(
            "tandem_items_lost_total",
            "Items sent to a worker that died, then given up (too old to resend, or shutdown).",
            ["stream", "modality", "reason"],
            registry=registry,
        )
        self.rejected = Counter(
            "tandem_messages_rejected_total",
            "Messages dropped by validation, by socket and reason.",
            ["socket", "reason"],
            registry=registry,
        )
        self.disconnects = Counter(
            "tandem_peer_disconnects_total",
            "Peer connections closed, by socket (ZeroMQ also closes a peer that sends a "
            "message part over twice max_message_bytes).",
            ["socket"],
            registry=registry,
        )
        self.analysis_fps = Gauge(
            "tandem_stream_analysis_fps",
            "Analysis frames per second a live stream runs at now (lowered under overload).",
            ["stream"],
            registry=registry,
        )
        self.degrade_actions = Counter(
            "tandem_degrade_actions_total",
            "Analysis fps changes by the overload policy, by direction (down, up).",
            ["stream", "direction"],
            registry=registry,
        )
        self.fused = Counter(
            "tandem_fused_records_total",
            "Fused window records published.",
            ["stream"],
            registry=registry,
        )
        self.detections = Counter(
            "tandem_detections_published_total",
            "Per-item records (every analyzer's outputs for one frame or chunk) published.",
            ["stream", "modality"],
            registry=registry,
        )
        self.send_failures = Counter(
            "tandem_send_failures_total",
            "Messages tandemd could not send to a peer (a worker, an ingest process), by "
            "socket and reason: unreachable (gone), would_block (its pipe full), error.",
            ["socket", "reason"],
            registry=registry,
        )
        self.publish_dropped = Counter(
            "tandem_publish_dropped_total",
            "Records not published, by kind (fused, detections, event, ...) and reason: "
            "unencodable (not valid JSON), invalid (does not fit its record type), would_block "
            "(the socket refused without waiting).",
            ["kind", "reason"],
            registry=registry,
        )
        self.fused_partial = Counter(
            "tandem_fused_partial_records_total",
            "Fused records published with a modality missing.",
            ["stream"],
            registry=registry,
        )
        self.events = Counter(
            "tandem_events_total",
            "Event edges published (edge: start or end), per stream and rule.",
            ["stream", "event", "edge"],
            registry=registry,
        )
        self.actions = Counter(
            "tandem_actions_total",
            "Event-rule actions (cascades) by outcome: done, refused (ceiling), expired.",
            ["stream", "action", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "tandem_capture_to_publish_latency_seconds",
            "From capture of a window's newest item to publication of its record.",
            ["stream"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.stage_latency = Histogram(
            "tandem_stage_latency_seconds",
            "Latency of one stage of a stream's path (stages: daemon/core/stages.py).",
            ["stream", "stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.credits = Gauge(
            "tandem_worker_credits",
            "Free credit of the registered workers: items they can take now.",
            ["kind"],
            registry=registry,
        )
        self.stream_held = Gauge(
            "tandem_stream_items_held",
            "Items of the stream held by tandemd (queued or at a worker), at most its queue.",
            ["stream"],
            registry=registry,
        )
        self.workers = Gauge(
            "tandem_workers",
            "Workers registered and alive.",
            ["kind"],
            registry=registry,
        )
        self.worker_deaths = Counter(
            "tandem_worker_deaths_total",
            "Workers declared dead (missed heartbeats).",
            ["kind"],
            registry=registry,
        )
        self.queued = Gauge(
            "tandem_items_queued",
            "Items waiting in tandemd for a worker.",
            ["kind"],
            registry=registry,
        )
        self.inflight = Gauge(
            "tandem_items_inflight",
            "Items at workers, not yet answered.",
            ["kind"],
            registry=registry,
        )
        self.stream_up = Gauge(
            "tandem_stream_up",
            "1 while the stream's source is open and delivering (state running).",
            ["stream"],
            registry=registry,
        )
        self.stream_state = Gauge(
            "tandem_stream_state",
            "1 for the stream's current health state, 0 for the others.",
            ["stream", "state"],
            registry=registry,
        )
        self.stream_transitions = Counter(
            "tandem_stream_transitions_total",
            "Health state changes of a stream, by the state entered.",
            ["stream", "state"],
            registry=registry,
        )
        self.reconnects = Counter(
            "tandem_reconnects_total",
            "Attempts to reopen a live source after an error or its end.",
            ["stream"],
            registry=registry,
        )
        self.discontinuities = Counter(
            "tandem_timestamp_discontinuities_total",
            "Source timestamp discontinuities repaired on the media timeline, by kind.",
            ["stream", "kind"],
            registry=registry,
        )
        self.corrupt_packets = Counter(
            "tandem_corrupt_packets_total",
            "Packets the demuxer flagged as corrupt, skipped.",
            ["stream"],
            registry=registry,
        )
        self.format_changes = Counter(
            "tandem_format_changes_total",
            "Mid-stream changes of video resolution or audio format, handled.",
            ["stream"],
            registry=registry,
        )
        self.child_restarts = Counter(
            "tandem_child_restarts_total",
            "Local child processes restarted after they exited.",
            ["process"],
            registry=registry,
        )
        self.latency_objective = Gauge(
            "tandem_latency_objective_seconds",
            "A live stream's latency objective (latency_objective_ms): items older are "
            "dropped as stale, and the latency alert compares against it.",
            ["stream"],
            registry=registry,
        )
        # What each registered worker reports of itself (daemon/dispatch/figures.py).
        self.worker_figures = WorkerFigures(registry)
        self.build_info = Gauge(
            "tandem_build_info",
            "1, labelled with the versions of tandem, Python, PyAV and libzmq running.",
            list(BUILD_LABELS),
            registry=registry,
        )
        self.build_info.labels(*BUILD_LABELS.values()).set(1)

    def forget_stream(self, stream: str) -> None:
        """Remove every series labelled with `stream` (a stream removed by reload is then
        not `down` forever), through prometheus_client's public remove_by_labels."""
        for metric in vars(self).values():
            if isinstance(metric, MetricWrapperBase):
                with contextlib.suppress(ValueError):  # a metric without a stream label
                    metric.remove_by_labels({"stream": stream})


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


BUILD_LABELS = {
    "version": _version("tandem"),
    "python": platform.python_version(),
    "av": _version("av"),
    "zmq": zmq.zmq_version(),  # libzmq, which speaks on the wire
}


def register_process_collectors(registry: CollectorRegistry) -> None:
    """process_* (CPU, memory, file descriptors, start time) and python_* (version, GC)
    on `registry`, as the global registry would have them."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
