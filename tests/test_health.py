"""tandemd's HTTP endpoint on a real tandemd: /readyz 503 saying what is missing until
its worker registered and its stream started, then 200; /healthz 200 while the loop
turns, 503 while it is wedged (the SIGUSR2 test hook), 200 again after; /metrics serves
the registry with process_*, python_* and tandem_build_info; other paths 404."""

from __future__ import annotations

import platform
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from daemon.core.health import STALE_S
from tests.conftest import scrape, wait_until
from tests.support.ops_support import base_config, metrics_port, spawn

WEDGE_S = STALE_S + 4.0  # /healthz answers 503 for the last 4 s of the wedge
TONE = (
    '[[streams]]\nid = "tone"\nurl = "sine=frequency=440:sample_rate=16000"\n'
    'format = "lavfi"\nvideo = false\n'
)


def get(port: int, path: str) -> tuple[int, str]:
    """(status, body); (0, "") while nothing listens."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return 0, ""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_health_and_readiness_across_startup_and_a_wedged_loop(tmp_path: Path) -> None:
    config = base_config(tmp_path, audio_workers=1) + TONE
    (tmp_path / "config.toml").write_text(config)
    port = metrics_port(config)
    env = {"TANDEM_TEST_WEDGE_S": str(WEDGE_S)}
    proc = spawn(tmp_path / "config.toml", tmp_path / "tandemd.log", env)
    log = tmp_path / "tandemd.log"
    try:
        # The endpoint is up before the worker (a process importing torch) registers.
        assert wait_until(lambda: get(port, "/readyz")[0] != 0, 30), log.read_text()
        status, body = get(port, "/readyz")
        assert status == 503 and body.startswith("not ready: "), (status, body)
        assert get(port, "/healthz") == (200, "ok\n")
        assert wait_until(lambda: get(port, "/readyz")[0] == 200, 60), log.read_text()
        assert get(port, "/readyz") == (200, "ready\n")
        assert get(port, "/metrics")[0] == 200
        for path in ("/", "/metrics/x", "/health", "/favicon.ico"):
            assert get(port, path)[0] == 404, path

        proc.send_signal(signal.SIGUSR2)
        wedged_at = time.monotonic()
        assert wait_until(lambda: get(port, "/healthz")[0] == 503, WEDGE_S), log.read_text()
        assert time.monotonic() - wedged_at >= STALE_S - 0.5  # not before the loop went stale
        status, body = get(port, "/healthz")
        assert status == 503 and "main loop has not turned for" in body, (status, body)
        assert get(port, "/readyz")[0] == 503
        assert get(port, "/metrics")[0] == 200  # the server's own thread still answers
        assert wait_until(lambda: get(port, "/healthz")[0] == 200, WEDGE_S), log.read_text()
        assert get(port, "/readyz")[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        proc.kill()
        proc.wait()
    assert "test hook: main loop wedged" in log.read_text()


@pytest.mark.timeout(60)
def test_process_python_and_build_info_metrics(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    (tmp_path / "config.toml").write_text(config)
    port = metrics_port(config)
    proc = spawn(tmp_path / "config.toml", tmp_path / "tandemd.log", {})
    try:
        assert wait_until(lambda: get(port, "/metrics")[0] == 200, 30)
        samples = scrape(port)
        names = {name for name, _ in samples}
        for name in (
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
            "python_info",
            "python_gc_collections_total",
        ):
            assert name in names, name
        (labels,) = [dict(lab) for name, lab in samples if name == "tandem_build_info"]
        assert set(labels) == {"version", "python", "av", "zmq"}
        assert labels["python"] == platform.python_version()
        assert (
            all(labels.values())
            and samples[("tandem_build_info", tuple(sorted(labels.items())))] == 1
        )
    finally:
        proc.terminate()
        proc.wait(15)


def test_healthz_fails_while_a_local_worker_is_left_down(tmp_path: Path) -> None:
    """The watchdog's rule: a local worker that exhausted its restart budget makes
    tandemd unhealthy (in this process: a real Tandemd, its loop's tick driven here)."""
    import zmq

    from daemon.config import load_config
    from daemon.core.service import Tandemd

    (tmp_path / "config.toml").write_text(base_config(tmp_path))
    service = Tandemd(load_config(tmp_path / "config.toml"))
    try:
        now = time.monotonic()
        service._maybe_start_ingest()  # no workers wanted: ready at once
        service.ops.tick(now)
        assert service.ops.health.live(now) == (True, "ok\n")
        assert service.ops.health.ready(now) == (True, "ready\n")
        child = service.children.add("worker-audio-0", ["daemon.workers"], restart=True)
        child.given_up = True  # as after 5 restarts in 60 s
        service.ops.tick(now + 1.0)
        assert service.ops.health.live(now + 1.0) == (False, "worker-audio-0: left down\n")
        assert service.ops.health.ready(now + 1.0)[0] is False
    finally:
        service._shutdown(zmq.Poller())
