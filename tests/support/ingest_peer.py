"""A real ingest process (`python -m daemon.ingest`) talking to a real ROUTER socket that
plays tandemd's part: it grants credit and records every message. Network sources are
Debian's ffmpeg (and rtsp-server-perl) on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import zmq

from daemon.ingest.launch import IngestLaunch
from daemon.runtime.lifeline import PARENT_ENV
from daemon.wire import protocol
from streams import SourceSpec
from tests.conftest import ROOT

LAVFI_AV = [
    "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
    "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15",
    "-c:a", "aac",
]  # fmt: skip


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed (scripts/system-deps installs it)")
    return path


def ffmpeg_push(*output: str) -> subprocess.Popen[bytes]:
    """ffmpeg generating a test pattern and a tone in real time, sent to `output`."""
    argv = [need("ffmpeg"), "-nostdin", "-loglevel", "error", "-re", *LAVFI_AV, *output]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


class IngestPeer:
    """tandemd's side of one ingest process."""

    def __init__(
        self, tmp: Path, spec: SourceSpec, bound: int = 16, credit: int = 64, replenish: bool = True
    ) -> None:
        self.credit, self.replenish = credit, replenish
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(f"ipc://{tmp}/ingest-{spec.stream_id}.sock")
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.messages: list[tuple[float, Any]] = []  # (monotonic arrival, message)
        self.identity: bytes | None = None
        launch = IngestLaunch(spec, self.endpoint, bound=bound, log_level="info")
        self.log = (tmp / f"ingest-{spec.stream_id}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *launch.argv()],
            cwd=ROOT,
            env=dict(os.environ, **{PARENT_ENV: str(os.getpid())}),
            stdin=subprocess.PIPE,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(launch.stdin())
        self.proc.stdin.close()

    def pump(self, seconds: float) -> None:
        """Receive for `seconds`, granting one credit back for every item."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if not self.sock.poll(max(1, int(left * 1000)), zmq.POLLIN):
                continue
            identity, *frames = self.sock.recv_multipart()
            msg, _ = protocol.decode(frames)
            self.messages.append((time.monotonic(), msg))
            if isinstance(msg, protocol.IngestHello):
                self.identity = identity
                self._send(protocol.Credit(v=protocol.PROTOCOL_VERSION, n=self.credit))
            elif isinstance(msg, protocol.VideoItem | protocol.AudioItem) and self.replenish:
                self._send(protocol.Credit(v=protocol.PROTOCOL_VERSION, n=1))

    def pump_until(self, predicate: Any, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            self.pump(0.1)
        return bool(predicate())

    def of(self, kind: type) -> list[Any]:
        return [m for _, m in self.messages if isinstance(m, kind)]

    def states(self) -> list[str]:
        return [m.state for m in self.of(protocol.IngestState)]

    def counters(self) -> dict[str, int]:
        stats = self.of(protocol.IngestStats)
        return stats[-1].counters if stats else {}

    def stop(self, timeout_s: float = 10.0) -> int:
        if self.identity is not None and self.proc.poll() is None:
            self._send(protocol.Stop(v=protocol.PROTOCOL_VERSION))
        deadline = time.monotonic() + timeout_s
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.pump(0.1)
        self.pump(0.2)
        return self.close()

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.kill()
        code = self.proc.wait()
        self.sock.close()
        self.ctx.term()
        self.log.close()
        return code

    def _send(self, msg: protocol.BaseMessage) -> None:
        assert self.identity is not None
        self.sock.send_multipart([self.identity, protocol.encode(msg)])
