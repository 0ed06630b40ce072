"""Every counter of tandemd has a 0 sample from the start for each label set known then
(each configured stream, each worker kind, each documented reason, each event rule and
action), so panels never say "No data" and `increase()` sees a first event; a stream
removed by a reload loses its series, an added one starts at 0."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
import zmq
from prometheus_client import CollectorRegistry, Counter

from daemon.config import load_config
from daemon.core.metrics_seed import DROP_REASONS, KINDS, LOST_REASONS, REJECTED
from daemon.core.service import Tandemd
from daemon.wire.vocabulary import STREAM_STATES
from tests.conftest import scrape, wait_until
from tests.support.ops_support import base_config, metrics_port


def stream(stream_id: str, mode: str = "live") -> str:
    return (
        f'[[streams]]\nid = "{stream_id}"\nmode = "{mode}"\nlatency_objective_ms = 1500\n'
        'url = "sine=frequency=440:sample_rate=16000"\nformat = "lavfi"\nvideo = false\n'
    )


RULE = """
[[events]]
name = "loud"
when = {analyzer = "level", output = "rms_dbfs", op = "gt", value = 0}
actions = [{do = "raise_fps", fps = 10, for_s = 5}]
"""

Labels = dict[str, str]


def counter_samples(registry: CollectorRegistry) -> dict[str, list[tuple[Labels, float]]]:
    """Each tandem_* counter's `_total` samples, by metric name."""
    out: dict[str, list[tuple[Labels, float]]] = {}
    for collector in list(registry._collector_to_names):  # no public list
        if not isinstance(collector, Counter):
            continue
        for family in collector.collect():
            out[family.name] = [
                (s.labels, s.value) for s in family.samples if s.name.endswith("_total")
            ]
    return out


def test_every_counter_starts_at_zero_for_every_known_label_set(tmp_path: Path) -> None:
    text = base_config(tmp_path, audio_workers=1) + stream("cam") + stream("rec", "file") + RULE
    (tmp_path / "config.toml").write_text(text)
    registry = CollectorRegistry()
    service = Tandemd(load_config(tmp_path / "config.toml"), registry)
    try:
        service._add_workers()  # as run() does first: the local worker's child is known
        samples = counter_samples(registry)
    finally:
        service.children.stopping = True
        service._shutdown(zmq.Poller())
    assert samples and all(samples.values()), [n for n, s in samples.items() if not s]
    assert all(value == 0 for series in samples.values() for _, value in series)

    def has(name: str, **labels: str) -> bool:
        return any(sample == labels for sample, _ in samples[name])

    for kind in KINDS:
        assert has("tandem_worker_deaths", kind=kind)
        assert has("tandem_items_dispatched", kind=kind)
    for sid in ("cam", "rec"):
        for name in ("tandem_reconnects", "tandem_decode_errors", "tandem_corrupt_packets"):
            assert has(name, stream=sid), (name, sid)
        for reason in LOST_REASONS:
            assert has("tandem_items_lost", stream=sid, modality="audio", reason=reason)
        for reason in DROP_REASONS:
            assert has("tandem_frames_dropped", stream=sid, modality="audio", reason=reason)
        assert not has("tandem_frames_dropped", stream=sid, modality="video", reason="stale")
        for state in STREAM_STATES:
            assert has("tandem_stream_transitions", stream=sid, state=state)
        for edge in ("start", "end"):
            assert has("tandem_events", stream=sid, event="loud", edge=edge)
        assert has("tandem_actions", stream=sid, action="raise_fps", outcome="refused")
        assert has("tandem_child_restarts", process=f"ingest-{sid}")
    assert has("tandem_child_restarts", process="worker-audio-0")
    for socket, reasons in REJECTED.items():
        for reason in reasons:
            assert has("tandem_messages_rejected", socket=socket, reason=reason)
    objective = registry.get_sample_value("tandem_latency_objective_seconds", {"stream": "cam"})
    assert objective == 1.5
    # A file has no real-time objective: nothing of it goes stale.
    assert registry.get_sample_value("tandem_latency_objective_seconds", {"stream": "rec"}) is None


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_reload_removes_a_streams_series_and_seeds_the_new_ones(
    tmp_path: Path, tandemd: Any
) -> None:
    base = base_config(tmp_path)
    port = metrics_port(base)
    daemon = tandemd(base + stream("old"))

    def series_of(sid: str) -> set[str]:
        try:
            samples = scrape(port)
        except OSError:
            return set()
        return {
            name
            for name, labels in samples
            if ("stream", sid) in labels or ("process", f"ingest-{sid}") in labels
        }

    assert wait_until(lambda: "tandem_reconnects_total" in series_of("old"), 30), daemon.log()
    assert {"tandem_child_restarts_total", "tandem_latency_objective_seconds"} <= series_of("old")
    (tmp_path / "config0.toml").write_text(base + stream("new"))
    daemon.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: not series_of("old"), 30), (series_of("old"), daemon.log())
    new = series_of("new")
    for name in (
        "tandem_reconnects_total",
        "tandem_decode_errors_total",
        "tandem_items_lost_total",
        "tandem_child_restarts_total",
        "tandem_latency_objective_seconds",
    ):
        assert name in new, name
    assert daemon.stop() == 0
