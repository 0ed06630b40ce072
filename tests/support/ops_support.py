"""Helpers for the operations tests: a tandemd with a given environment, configs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, free_port

QUIET_WORKERS = """
[workers.vision]
count = 0
analyzers = ["motion"]

[workers.audio]
count = {audio}
analyzers = ["level"]
{audio_metrics}
"""


def base_config(tmp: Path, audio_workers: int = 0, worker_metrics_port: int | None = None) -> str:
    """A config with no streams, its own ports and runtime dir, `audio_workers` workers."""
    audio_metrics = "" if worker_metrics_port is None else f"metrics_port = {worker_metrics_port}"
    return (
        f'runtime_dir = "{tmp / "run"}"\n'
        "[log]\ndigest_s = 0\n"
        f'[publish]\nendpoint = "tcp://127.0.0.1:{free_port()}"\n'
        f"[metrics]\nport = {free_port()}\n"
        + QUIET_WORKERS.format(audio=audio_workers, audio_metrics=audio_metrics)
    )


def metrics_port(config_text: str) -> int:
    section = config_text.split("[metrics]", 1)[1]
    return int(section.split("port = ", 1)[1].split()[0])


def spawn(config_path: Path, log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "daemon.cli.tandemd", str(config_path)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def receive(sock: socket.socket, timeout_s: float) -> list[tuple[float, str]]:
    """Datagrams arriving within `timeout_s`, with their arrival time."""
    out = []
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            out.append((time.monotonic(), sock.recv(4096).decode()))
        except TimeoutError:
            break
    return out
