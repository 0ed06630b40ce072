"""Shared fixtures: real media files, free ports, and a real tandemd in a subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.media import encode_clip

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two short H.264 + AAC clips with different content."""
    d = tmp_path_factory.mktemp("media")
    return {
        "a": encode_clip(d / "a.mp4", seconds=4.0, tone_hz=440, amplitude=0.5),
        "b": encode_clip(
            d / "b.mkv", seconds=3.0, width=256, height=144, fps=25, tone_hz=1000, amplitude=0.1
        ),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Daemon:
    """A tandemd subprocess on a config written to a temp dir."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli.tandemd", str(config_path)],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            for child in children_of(self.proc.pid):
                # It may have exited and been reaped since it was listed.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def tandemd(tmp_path: Path) -> Iterator[type]:
    """Factory: `tandemd(config_text)` starts a daemon; all are killed after the test."""
    started: list[Daemon] = []

    def start(config_text: str) -> Daemon:
        path = tmp_path / f"config{len(started)}.toml"
        path.write_text(config_text)
        daemon = Daemon(path, tmp_path / f"tandemd{len(started)}.log")
        started.append(daemon)
        return daemon

    yield start  # type: ignore[misc]
    for daemon in started:
        daemon.kill()


def wait_until(predicate: object, timeout_s: float, interval_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval_s)
    return False


def accepts_tcp(port: int) -> bool:
    """Whether something on this machine accepts TCP connections on `port` now."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of tandemd's /metrics, keyed by (name, sorted labels)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def metric(port: int, name: str, **labels: str) -> float:
    """One sample's value; 0 when absent, NaN while the endpoint is not up yet."""
    try:
        samples = scrape(port)
    except (urllib.error.URLError, ConnectionError):
        return float("nan")
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def worker_argv(kind: str, endpoint: str, *extra: str) -> list[str]:
    """The command line of a standalone worker (`tandem worker`), as on a remote host."""
    return [
        sys.executable,
        "-m",
        "daemon.cli.tandem",
        "worker",
        "--kind",
        kind,
        "--endpoint",
        endpoint,
        *extra,
    ]
