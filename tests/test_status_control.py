"""`tandem status` asks a real tandemd over its local control socket."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon.control.answers import request
from tests.conftest import ROOT, wait_until
from tests.support.ops_support import base_config

TONE = (
    '[[streams]]\nid = "tone"\nurl = "sine=frequency=440:sample_rate=16000"\n'
    'format = "lavfi"\nvideo = false\n'
)


def tandem(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli.tandem", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_tandem_status_shows_streams_workers_and_rates(tmp_path: Path, tandemd: Any) -> None:
    daemon = tandemd(base_config(tmp_path, audio_workers=1) + TONE)
    config = daemon.proc.args[-1]
    endpoint = f"ipc://{tmp_path / 'run' / 'control.sock'}"

    def flowing() -> bool:
        try:
            reply = request(endpoint, {"type": "status"}, timeout_s=2)
        except TimeoutError:
            return False
        rates = reply["streams"][0]["rates"] if reply["streams"] else {}
        # Steady state: the rate window (10 s) no longer covers the start-up.
        return rates.get("records", 0) > 0 and rates.get("audio_in", 0) >= 1.2

    assert wait_until(flowing, 60, interval_s=0.5), daemon.log()
    shown = tandem("status", "--config", config, "--json")
    assert shown.returncode == 0, shown.stderr
    reply = json.loads(shown.stdout)
    assert reply["ok"] and reply["ready"] and reply["healthy"]
    assert reply["pid"] == daemon.proc.pid
    (stream,) = reply["streams"]
    assert stream["id"] == "tone" and stream["state"] == "running"
    # A live 16 kHz tone in 0.5 s chunks: about 2 chunks/s in.
    assert 0.8 <= stream["rates"]["audio_in"] <= 3.0, stream
    (worker,) = reply["workers"]
    assert worker["kind"] == "audio" and worker["analyzers"] == ["level"]
    table = tandem("status", "--config", config)
    assert table.returncode == 0
    assert "tone" in table.stdout and "running" in table.stdout and "audio" in table.stdout

    unknown = request(endpoint, {"type": "nope"})
    assert unknown == {
        "ok": False,
        "type": "error",
        "error": "unknown request type 'nope'; known: active_events, recent_events, status",
    }
    assert daemon.stop() == 0


def test_tandem_status_without_tandemd_fails_clearly(tmp_path: Path) -> None:
    result = tandem("status", "--endpoint", f"ipc://{tmp_path}/none.sock", "--timeout", "0.5")
    assert result.returncode == 1
    assert "no answer from tandemd" in result.stderr
