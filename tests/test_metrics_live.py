"""Metrics on a live tandemd and its worker: every stage's latency histogram is filled,
labels stay bounded, `promtool check metrics` is clean on both scrapes, and Debian's
prometheus server scrapes both and answers a query through its HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, metric, wait_until
from tests.support.ops_support import base_config, metrics_port

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
TONE = (
    '[[streams]]\nid = "tone"\nurl = "sine=frequency=440:sample_rate=16000"\n'
    'format = "lavfi"\nvideo = false\n'
)
# Every label name tandemd and its workers use: per stream, kind, reason; never per frame.
BOUNDED_LABELS = {
    "stream", "modality", "reason", "kind", "state", "stage", "socket", "process",
    "analyzer", "le",
    "direction", "event", "edge", "action", "outcome",  # per stream: bounded by the config
    "worker",  # tandemd's copies of its workers' figures: one per registered worker
    # constants of the running build: tandem_build_info, python_info; GC generations
    "version", "python", "av", "zmq", "implementation", "major", "minor", "patchlevel",
    "generation",
}  # fmt: skip
STAGES = ("ingest", "queue", "inference", "fusion", "publish")


@pytest.fixture
def live(tmp_path: Path, tandemd: Any) -> Iterator[tuple[int, int]]:
    """A running tandemd with one audio worker serving its own /metrics: (ports)."""
    worker_port = free_port()
    config = base_config(tmp_path, audio_workers=1, worker_metrics_port=worker_port) + TONE
    daemon = tandemd(config)
    port = metrics_port(config)

    def filled() -> bool:
        return all(
            metric(port, "tandem_stage_latency_seconds_count", stream="tone", stage=s) > 0
            for s in STAGES
        )

    assert wait_until(filled, 60, interval_s=0.5), daemon.log()
    yield port, worker_port
    assert daemon.stop() == 0


def _text(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()


@pytest.mark.slow
def test_stage_latency_and_bounded_labels(live: tuple[int, int]) -> None:
    port, worker_port = live
    assert metric(port, "tandem_worker_credits", kind="audio") >= 0
    for text in (_text(port), _text(worker_port)):
        for line in text.splitlines():
            if line.startswith("#") or "{" not in line:
                continue
            labels = line.split("{", 1)[1].rsplit("}", 1)[0]
            names = {pair.split("=", 1)[0] for pair in labels.split('",') if pair}
            assert names <= BOUNDED_LABELS, line
    assert metric(worker_port, "tandem_worker_items_total") > 0


@pytest.mark.slow
@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (prometheus package)")
def test_promtool_check_metrics_is_clean(live: tuple[int, int]) -> None:
    assert PROMTOOL is not None
    for port in live:
        result = subprocess.run(
            [PROMTOOL, "check", "metrics"], input=_text(port), capture_output=True, text=True
        )
        assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
            result.stdout + result.stderr
        )


@pytest.mark.slow
@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed")
@pytest.mark.timeout(120)
def test_prometheus_scrapes_tandemd_and_worker(tmp_path: Path, live: tuple[int, int]) -> None:
    port, worker_port = live
    web = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
        f"  - job_name: tandemd\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        "  - job_name: tandem-worker\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{worker_port}']}}]\n"
    )
    assert PROMETHEUS is not None
    with (tmp_path / "prometheus.log").open("wb") as log:
        server = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{web}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def query(q: str) -> list[dict[str, Any]]:
            url = f"http://127.0.0.1:{web}/api/v1/query?" + urllib.parse.urlencode({"query": q})
            try:
                body = json.loads(urllib.request.urlopen(url, timeout=5).read())
            except OSError:
                return []
            assert body["status"] == "success", body
            return list(body["data"]["result"])

        series = 'tandem_stage_latency_seconds_count{job="tandemd",stream="tone",stage="inference"}'
        assert wait_until(lambda: query(series), 60, 0.5), (tmp_path / "prometheus.log").read_text()
        (sample,) = query(series)
        assert float(sample["value"][1]) > 0
        assert wait_until(lambda: query('tandem_worker_items_total{job="tandem-worker"} > 0'), 30)
        up = {r["metric"]["job"]: r["value"][1] for r in query("up")}
        assert up == {"tandemd": "1", "tandem-worker": "1"}
    finally:
        server.terminate()
        server.wait(10)
