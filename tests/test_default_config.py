"""The embedded default config.toml runs as shipped: lavfi streams, local workers, results."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT, Daemon, alive, children_of

pytestmark = pytest.mark.slow


def test_watch_gets_ten_records_from_the_default_config(tmp_path) -> None:
    daemon = Daemon(ROOT / "config.toml", tmp_path / "tandemd.log")
    started = time.monotonic()
    try:
        watch = subprocess.run(
            [sys.executable, "-m", "daemon.cli.tandem", "watch", "--count", "10", "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=25,
        )
        elapsed = time.monotonic() - started
        assert watch.returncode == 0, watch.stderr + daemon.log()
        assert elapsed < 20, f"took {elapsed:.1f} s"
        records = [json.loads(line) for line in watch.stdout.splitlines()]
        assert len(records) == 10
        assert {r["stream"] for r in records} == {"testsrc", "life"}
        for r in records:
            assert r["type"] == "fused" and r["window"]["end"] > r["window"]["start"]
            assert "motion" in r["video"]["analyzers"] or r["video"]["results"] == 0

        # Per item too: every analyzer's outputs for each frame and chunk.
        per_item_args = ["watch", "--detections", "--count", "60", "--json"]
        watch = subprocess.run(
            [sys.executable, "-m", "daemon.cli.tandem", *per_item_args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=25,
        )
        assert watch.returncode == 0, watch.stderr
        per_item = [
            r for r in map(json.loads, watch.stdout.splitlines()) if r["type"] == "detections"
        ]
        video = [r for r in per_item if r["modality"] == "video"]
        audio = [r for r in per_item if r["modality"] == "audio"]
        assert video and audio, watch.stdout
        for r in video:
            assert isinstance(r["outputs"]["faces"]["boxes"], list), r
            assert len(r["outputs"]["persons"]["scores"]) == r["outputs"]["persons"]["count"]
        assert all("speech_starts" in r["outputs"]["vad"] for r in audio)

        metrics = urllib.request.urlopen("http://127.0.0.1:9310/metrics", timeout=5).read()
        assert b'tandem_fused_records_total{stream="testsrc"}' in metrics

        children = children_of(daemon.proc.pid)
        assert len(children) == 5  # two ingest processes, two vision workers, one audio
        daemon.proc.send_signal(signal.SIGINT)  # Ctrl-C stops it as cleanly as SIGTERM
        assert daemon.proc.wait(10) == 0
        assert not [pid for pid in children if alive(pid)]
    finally:
        daemon.kill()
