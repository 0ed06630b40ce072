"""sd_notify: a real NOTIFY_SOCKET bound by the test receives READY=1 once tandemd's
sockets are bound and its worker registered, WATCHDOG=1 while the loop turns (none while
it is wedged), and STOPPING=1 at shutdown."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from daemon.core.notify import Notifier
from tests.conftest import metric
from tests.support.ops_support import base_config, metrics_port, receive, spawn

WATCHDOG_USEC = 1_000_000  # pings every 0.5 s
WEDGE_S = 3.0


def test_notify_from_env_reads_and_unsets() -> None:
    env = {"NOTIFY_SOCKET": "/run/x.sock", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}
    notifier = Notifier.from_env(env)
    assert env == {}  # children do not inherit them
    assert notifier.address == "/run/x.sock"
    assert notifier.watchdog_s is None  # the watchdog is another process's (pid 1)
    notifier.close()


def test_watchdog_pings_only_when_due_and_healthy(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "n.sock"))
        notifier = Notifier(str(tmp_path / "n.sock"), watchdog_s=2.0)
        assert notifier.watchdog(10.0, healthy=True)
        assert not notifier.watchdog(10.5, healthy=True)  # not due (every 1 s)
        assert not notifier.watchdog(11.5, healthy=False)
        assert notifier.watchdog(11.6, healthy=True)
        assert [m for _, m in receive(sock, 0.2)] == ["WATCHDOG=1", "WATCHDOG=1"]
        notifier.close()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_notify_sequence_and_wedged_loop(tmp_path: Path) -> None:
    config = base_config(tmp_path, audio_workers=1)
    (tmp_path / "config.toml").write_text(config)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify.sock"))
        env = {
            "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
            "WATCHDOG_USEC": str(WATCHDOG_USEC),
            "TANDEM_TEST_WEDGE_S": str(WEDGE_S),
        }
        proc = spawn(tmp_path / "config.toml", tmp_path / "tandemd.log", env)
        try:
            first = receive_one(sock, 60)
            assert "READY=1" in first.split("\n"), first
            assert "STATUS=ready: 0 streams, 0 vision and 1 audio workers" in first
            # READY=1 came after the local worker registered.
            assert metric(metrics_port(config), "tandem_workers", kind="audio") == 1
            pings = receive(sock, 2.0)
            assert len(pings) >= 3 and all(m == "WATCHDOG=1" for _, m in pings), pings
            proc.send_signal(signal.SIGUSR2)
            during = receive(sock, WEDGE_S - 0.8)  # allow one ping sent before the signal
            assert [m for _, m in during].count("WATCHDOG=1") <= 1, during
            after = receive(sock, 2.5)
            assert [m for _, m in after].count("WATCHDOG=1") >= 2, after
            proc.send_signal(signal.SIGTERM)
            tail = [m for _, m in receive(sock, 8.0)]
            assert any(m.startswith("STOPPING=1") for m in tail), tail
            assert proc.wait(10) == 0
        finally:
            proc.kill()
            proc.wait()
    log = (tmp_path / "tandemd.log").read_text()
    assert "test hook: main loop wedged" in log


def receive_one(sock: socket.socket, timeout_s: float) -> str:
    sock.settimeout(timeout_s)
    return sock.recv(4096).decode()


def test_no_watchdog_ping_while_a_worker_is_left_down(tmp_path: Path) -> None:
    """Healthy means the loop turns and no local worker exhausted its restart budget:
    a tandemd (in this process) stops pinging once one has."""
    import zmq

    from daemon.config import load_config
    from daemon.core.service import Tandemd

    (tmp_path / "config.toml").write_text(base_config(tmp_path))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "n.sock"))
        notifier = Notifier(str(tmp_path / "n.sock"), watchdog_s=0.2)
        service = Tandemd(load_config(tmp_path / "config.toml"), notifier=notifier)
        try:
            service.ops.tick(100.0)  # before READY=1: no ping
            service._maybe_start_ingest()  # no workers wanted: ready at once
            service.ops.tick(101.0)
            assert [m.split("\n")[0] for _, m in receive(sock, 0.3)] == ["READY=1", "WATCHDOG=1"]
            child = service.children.add("worker-audio-0", ["daemon.workers"], restart=True)
            child.given_up = True  # as after 5 restarts in 60 s
            service.ops.tick(102.0)
            assert receive(sock, 0.3) == []
            assert not service.ops.healthy()
        finally:
            service._shutdown(zmq.Poller())
        assert [m.split("\n")[0] for _, m in receive(sock, 0.3)] == ["STOPPING=1"]


TONE = (
    '[[streams]]\nid = "tone"\nurl = "sine=frequency=440:sample_rate=16000"\n'
    'format = "lavfi"\nvideo = false\n'
)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sighup_sends_reloading_then_ready_and_says_when_a_reload_failed(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    (tmp_path / "config.toml").write_text(config)
    log = tmp_path / "tandemd.log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify.sock"))
        env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
        proc = spawn(tmp_path / "config.toml", log, env)

        def next_message(timeout_s: float = 30) -> list[str]:
            try:
                return receive_one(sock, timeout_s).split("\n")
            except TimeoutError:
                raise AssertionError(
                    f"no notify message in {timeout_s} s:\n{log.read_text()}"
                ) from None

        try:
            assert "READY=1" in next_message(60)
            # A stream added: READY=1 comes once it started.
            (tmp_path / "config.toml").write_text(config + TONE)
            before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            proc.send_signal(signal.SIGHUP)
            reloading = next_message()
            after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            assert reloading[0] == "RELOADING=1", reloading
            (usec,) = [
                int(m.split("=", 1)[1]) for m in reloading if m.startswith("MONOTONIC_USEC=")
            ]
            assert before <= usec <= after
            done = next_message()
            assert done[0] == "READY=1" and done[1] == f"STATUS=reloaded {tmp_path / 'config.toml'}"
            # A bad file: refused, and STATUS= says so.
            (tmp_path / "config.toml").write_text(config + TONE + "[bogus]\n")
            proc.send_signal(signal.SIGHUP)
            assert next_message()[0] == "RELOADING=1"
            failed = next_message()
            assert failed[0] == "READY=1", failed
            assert failed[1].startswith("STATUS=reload failed, running config kept: "), failed
            assert "bogus" in failed[1]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
        finally:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert "reload rejected, running config kept" in text and "bogus" in text
