"""CurveZMQ on tcp endpoints: allow-listed keys only, failing closed without a ZAP handler."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import zmq
from prometheus_client import CollectorRegistry

from daemon.config import ConfigError, parse_config
from daemon.core.metrics import Metrics
from daemon.runtime.logs import setup_logging
from daemon.wire.endpoints import HandshakeMonitor, bind_server
from daemon.wire.security import (
    AllowList,
    SecurityError,
    secure_client,
    start_authenticator,
    write_keypair,
)
from tests.conftest import ROOT, free_port, wait_until, worker_argv


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    allowed, other = tmp_path / "allowed", tmp_path / "other"
    server_public, server_secret = write_keypair(tmp_path / "server", "tandemd")
    worker_public, worker_secret = write_keypair(tmp_path / "workers", "worker1")
    allowed.mkdir()
    (allowed / "worker1.key").write_bytes(worker_public.read_bytes())
    _, stranger_secret = write_keypair(other, "stranger")
    return {
        "server_public": server_public,
        "server_secret": server_secret,
        "worker_secret": worker_secret,
        "stranger_secret": stranger_secret,
        "allowed": allowed,
    }


def test_public_key_is_0644_secret_0600_and_never_overwritten(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.cli.tandem", "keys", str(tmp_path / "k"), "host1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((tmp_path / "k" / "host1.key").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "k" / "host1.key_secret").stat().st_mode) == 0o600
    with pytest.raises(SecurityError, match="exists; not overwriting"):
        write_keypair(tmp_path / "k", "host1")


@pytest.mark.parametrize("section", ["dispatch", "publish"])
def test_plain_tcp_on_a_public_address_is_refused_unless_insecure(section: str) -> None:
    with pytest.raises(ConfigError, match=r"reachable from other hosts"):
        parse_config({section: {"endpoint": "tcp://0.0.0.0:7710"}})
    parse_config({section: {"endpoint": "tcp://0.0.0.0:7710", "insecure": True}})
    parse_config({section: {"endpoint": "tcp://127.0.0.1:7710"}})


class CurveServer:
    """tandemd's worker socket as tandemd builds it, with its handshake monitor."""

    def __init__(self, keys: dict[str, Path]) -> None:
        self.ctx: zmq.Context = zmq.Context()
        self.metrics = Metrics(CollectorRegistry())
        self.auth = start_authenticator(self.ctx, AllowList(keys["allowed"]))
        self.port = free_port()
        self.sock = bind_server(
            self.ctx,
            zmq.ROUTER,
            f"tcp://127.0.0.1:{self.port}",
            curve_secret_key=str(keys["server_secret"]),
        )
        self.monitor = HandshakeMonitor(self.sock, "dispatch", self.metrics)
        self.keys = keys

    def admits(self, configure: object) -> bool:
        """Connect a DEALER set up by `configure`, send, and see whether it arrives."""
        client = self.ctx.socket(zmq.DEALER)
        client.setsockopt(zmq.LINGER, 0)
        configure(client)  # type: ignore[operator]
        client.connect(f"tcp://127.0.0.1:{self.port}")
        client.send(b"hello")
        arrived = bool(self.sock.poll(1500, zmq.POLLIN))
        if arrived:
            self.sock.recv_multipart()
        client.close()
        return arrived

    def refused(self, reason: str) -> float:
        self.monitor.handle_incoming()
        return (
            self.metrics.registry.get_sample_value(
                "tandem_messages_rejected_total", {"socket": "dispatch", "reason": reason}
            )
            or 0.0
        )

    def close(self) -> None:
        self.monitor.close(self.sock)
        self.sock.close()
        if self.auth.is_alive():
            self.auth.stop()
        self.ctx.term()


@pytest.fixture
def server(keys: dict[str, Path]):
    s = CurveServer(keys)
    yield s
    s.close()


def allowed_key(keys: dict[str, Path]):
    return lambda sock: secure_client(sock, keys["server_public"], keys["worker_secret"])


def test_allowed_key_is_admitted(server: CurveServer, keys) -> None:
    assert server.admits(allowed_key(keys))


def test_unknown_key_is_refused_and_counted(server: CurveServer, keys) -> None:
    stranger = lambda sock: secure_client(sock, keys["server_public"], keys["stranger_secret"])  # noqa: E731
    assert not server.admits(stranger)
    assert server.refused("unauthorized") >= 1


@pytest.mark.slow
def test_null_and_plain_clients_are_refused(server: CurveServer) -> None:
    assert not server.admits(lambda sock: None)  # NULL: no security at all

    def plain(sock: zmq.Socket) -> None:
        sock.setsockopt(zmq.PLAIN_USERNAME, b"admin")
        sock.setsockopt(zmq.PLAIN_PASSWORD, b"admin")

    assert not server.admits(plain)
    assert server.refused("handshake") >= 2


@pytest.mark.slow
def test_each_kind_of_refusal_is_logged_though_others_came_first(
    server: CurveServer, keys, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refusals are rate-limited per reason: a plain client's refusal (handshake) must not
    hide the unknown key's (unauthorized) that follows it within the interval."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging("info", "tandemd", "json")
        assert not server.admits(lambda sock: None)
        assert wait_until(lambda: server.refused("handshake") >= 1, 5)
        stranger = lambda sock: secure_client(sock, keys["server_public"], keys["stranger_secret"])  # noqa: E731
        assert not server.admits(stranger)
        assert wait_until(lambda: server.refused("unauthorized") >= 1, 5)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    messages = [json.loads(line)["message"] for line in capsys.readouterr().out.splitlines()]
    refusals = [m for m in messages if "refused a peer's handshake" in m]
    assert any(": handshake (code" in m for m in refusals), refusals
    assert any(": unauthorized (code" in m for m in refusals), refusals


def test_stopped_authenticator_refuses_even_allowed_keys(server: CurveServer, keys) -> None:
    assert server.admits(allowed_key(keys))
    server.auth.stop()
    assert not server.admits(allowed_key(keys)), "no ZAP handler must mean nobody gets in"


@pytest.mark.slow
def test_tandemd_on_curve_serves_allowed_workers_only(
    tandemd, keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keys are read as systemd's LoadCredential= hands them over: from
    $CREDENTIALS_DIRECTORY, named as ${CREDENTIALS_DIRECTORY} in config and argv."""
    from tests.test_dispatch_faults import metric

    port, pub, metrics_port = free_port(), free_port(), free_port()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(keys["server_secret"].parent))
    daemon = tandemd(f"""
runtime_dir = "{tmp_path}/run"
[workers.audio]
count = 1
[dispatch]
endpoint = "tcp://0.0.0.0:{port}"
curve_secret_key = "${{CREDENTIALS_DIRECTORY}}/{keys["server_secret"].name}"
curve_allowed_keys = "{keys["allowed"]}"
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = {metrics_port}
""")
    # tandemd's own local workers get an ephemeral key it allows.
    assert wait_until(lambda: metric(metrics_port, "tandem_workers", kind="vision") == 1, 30), (
        daemon.log()
    )
    remote = worker_argv(
        "audio", f"tcp://127.0.0.1:{port}", "--server-key", str(keys["server_public"])
    )
    credential = "${CREDENTIALS_DIRECTORY}/" + keys["worker_secret"].name
    worker_env = dict(os.environ, CREDENTIALS_DIRECTORY=str(keys["worker_secret"].parent))
    good = subprocess.Popen([*remote, "--key", credential], cwd=ROOT, env=worker_env)
    bad = subprocess.Popen([*remote, "--key", str(keys["stranger_secret"])], cwd=ROOT)
    try:
        assert wait_until(lambda: metric(metrics_port, "tandem_workers", kind="audio") == 2, 30)
        assert wait_until(
            lambda: (
                metric(
                    metrics_port,
                    "tandem_messages_rejected_total",
                    socket="dispatch",
                    reason="unauthorized",
                )
                >= 1
            ),
            30,
        )
        assert metric(metrics_port, "tandem_workers", kind="audio") == 2  # not 3
    finally:
        for proc in (good, bad):
            proc.terminate()
            proc.wait(10)
