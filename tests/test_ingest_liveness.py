"""Liveness of the ingest link from tandemd's side: an ingest process that stops talking
(SIGSTOP: wedged) is killed; a live stream's is restarted and its records go on, a file
stream ends as failed instead of holding its windows forever."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from daemon.publishing.subscriber import Subscriber
from tests.conftest import alive, children_of, free_port, wait_until

pytestmark = pytest.mark.slow


def ingest_pid(daemon_pid: int) -> int | None:
    for pid in children_of(daemon_pid):
        try:
            if b"daemon.ingest" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def config(tmp: Path, pub: int, stream: str) -> str:
    return f"""
runtime_dir = "{tmp}/run"
[log]
digest_s = 0
[[streams]]
id = "cam"
{stream}
video = false
[workers.vision]
count = 0
analyzers = ["motion"]
[workers.audio]
count = 1
analyzers = ["level"]
[fusion]
window_s = 0.5
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = 0
"""


def test_a_wedged_live_ingest_is_killed_and_restarted(tandemd, tmp_path: Path) -> None:
    pub = free_port()
    live = 'url = "sine=frequency=440:sample_rate=16000"\nformat = "lavfi"'
    with Subscriber(f"tcp://127.0.0.1:{pub}", ["fused."]) as sub:
        daemon = tandemd(config(tmp_path, pub, live))
        assert next(iter(sub.records(timeout_s=60)), None) is not None, daemon.log()
        first = ingest_pid(daemon.proc.pid)
        assert first is not None
        os.kill(first, signal.SIGSTOP)
        stopped_at = time.monotonic()
        assert wait_until(lambda: not alive(first), 15), daemon.log()
        killed_after = time.monotonic() - stopped_at
        assert 4.0 <= killed_after <= 10.0, killed_after  # the 5 s liveness, not sooner
        assert wait_until(lambda: ingest_pid(daemon.proc.pid) not in (None, first), 15)
        list(sub.records(timeout_s=0.1))  # what was queued before the restart
        assert next(iter(sub.records(timeout_s=20)), None) is not None, "records go on"
    assert daemon.stop() == 0


def test_a_wedged_file_ingest_ends_its_stream_as_failed(tandemd, tmp_path: Path) -> None:
    pub = free_port()
    # A long file read at real-time pace: still running when it is stopped.
    slow_file = 'url = "sine=frequency=440:sample_rate=16000:duration=120"\nformat = "lavfi"\n'
    slow_file += 'mode = "file"\npace = "realtime"'
    statuses: list[dict] = []
    with Subscriber(f"tcp://127.0.0.1:{pub}", ["fused.", "status."]) as sub:
        daemon = tandemd(config(tmp_path, pub, slow_file))
        assert wait_until(lambda: ingest_pid(daemon.proc.pid) is not None, 60)
        assert next(iter(sub.records(timeout_s=60)), None) is not None, daemon.log()
        victim = ingest_pid(daemon.proc.pid)
        assert victim is not None
        os.kill(victim, signal.SIGSTOP)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(s.get("state") == "failed" for s in statuses):
            statuses += [r for _, r in sub.records(timeout_s=0.5) if r["type"] == "status"]
    failed = [s for s in statuses if s["state"] == "failed"]
    assert failed, daemon.log()
    assert "its ingest process exited with code -9" in failed[0]["detail"]
    assert daemon.stop() == 0
