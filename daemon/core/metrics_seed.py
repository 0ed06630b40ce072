"""Counters start at 0 for every label set known when tandemd starts (each configured
stream, each worker kind, each documented reason), not at their first event.

A counter series that appears only at its first event gives "No data" panels and, worse,
`increase()` cannot see that first event: Prometheus has no earlier sample to compare
with, so an alert like `increase(tandem_worker_deaths_total[5m]) > 0` misses the first
death of each kind. A stream's series are seeded when it is added (at start or by a
reload) and removed with it (daemon/core/reload.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter

from daemon.config import Config, StreamConfig
from daemon.core.metrics import Metrics
from daemon.wire.endpoints import SEND_FAILURE_REASONS
from daemon.wire.vocabulary import KINDS, MODALITIES, STREAM_STATES

DROP_REASONS = ("backpressure", "stale")
LOST_REASONS = ("worker_dead", "shutdown")
DISCARD_REASONS = ("unknown", "late")
TIMESTAMP_KINDS = ("jump", "wrap")
DIRECTIONS = ("down", "up")
EDGES = ("start", "end")
ACTION_OUTCOMES = ("done", "refused", "expired")
HANDSHAKE = ("unauthorized", "handshake")
# socket -> the reasons its messages can be refused for (docs/metrics.md)
REJECTED = {
    "dispatch": ("malformed", "version", "size", "unexpected", "unregistered", *HANDSHAKE),
    "ingest": ("malformed", "version", "size", "unknown_stream", "unexpected"),
    "control": ("invalid", *HANDSHAKE),
    "publish": HANDSHAKE,
}
MONITORED_SOCKETS = ("dispatch", "publish", "control")  # peer disconnects are counted
PUBLISHED_KINDS = ("fused", "detections", "event", "snapshot", "status", "correction")  # topics
PUBLISH_DROP_REASONS = ("unencodable", "invalid", "would_block")


def _zero(counter: Counter, *label_sets: Iterable[str]) -> None:
    for labels in label_sets:
        counter.labels(*labels)  # creating the child is the 0 sample


def seed_daemon(metrics: Metrics) -> None:
    """Per worker kind, per socket and reason: known before any stream or worker."""
    m = metrics
    for kind in KINDS:
        _zero(m.items_dispatched, [kind])
        _zero(m.results, [kind])
        _zero(m.worker_deaths, [kind])
        _zero(m.results_discarded, *([kind, r] for r in DISCARD_REASONS))
    for socket, reasons in REJECTED.items():
        _zero(m.rejected, *([socket, r] for r in reasons))
    _zero(m.disconnects, *([s] for s in MONITORED_SOCKETS))
    _zero(m.publish_dropped, *([k, r] for k in PUBLISHED_KINDS for r in PUBLISH_DROP_REASONS))
    _zero(m.send_failures, *([s, r] for s in ("dispatch", "ingest") for r in SEND_FAILURE_REASONS))


def seed_children(metrics: Metrics, names: Iterable[str]) -> None:
    _zero(metrics.child_restarts, *([name] for name in names))


def seed_stream(metrics: Metrics, stream: StreamConfig, config: Config) -> None:
    """Every counter of one stream, for its modalities, reasons and event rules; and
    its latency objective."""
    m, sid = metrics, stream.id
    for counter in (
        m.frames_decoded,
        m.frames_sampled,
        m.audio_chunks,
        m.decode_errors,
        m.corrupt_packets,
        m.reconnects,
        m.format_changes,
        m.fused,
        m.fused_partial,
    ):
        _zero(counter, [sid])
    modalities = [name for name in MODALITIES if getattr(stream, name)]
    _zero(m.items_received, *([sid, mod] for mod in modalities))
    if stream.detections:
        _zero(m.detections, *([sid, mod] for mod in modalities))
    _zero(m.dropped, *([sid, mod, r] for mod in modalities for r in DROP_REASONS))
    _zero(m.items_lost, *([sid, mod, r] for mod in modalities for r in LOST_REASONS))
    _zero(m.discontinuities, *([sid, kind] for kind in TIMESTAMP_KINDS))
    _zero(m.degrade_actions, *([sid, d] for d in DIRECTIONS))
    _zero(m.stream_transitions, *([sid, state] for state in STREAM_STATES))
    _zero(m.events, *([sid, rule.name, edge] for rule in config.events for edge in EDGES))
    actions = sorted({action.do for rule in config.events for action in rule.actions})
    _zero(m.actions, *([sid, a, o] for a in actions for o in ACTION_OUTCOMES))
    seed_children(m, [ingest_child(sid)])
    if stream.mode == "live":  # a file has no real-time objective: nothing goes stale
        m.latency_objective.labels(sid).set(stream.latency_objective_ms / 1000)


def ingest_child(stream_id: str) -> str:
    """The name of a stream's ingest process among tandemd's children."""
    return f"ingest-{stream_id}"
