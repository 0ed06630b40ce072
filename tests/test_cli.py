"""The operator's command line fails clearly, never with a traceback: endpoints without
a scheme, a reader that leaves the pipe, nothing to hear, dead daemons' sockets; and it
says what it is (--version, --help with defaults and exit codes)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.cli.tandem import build_parser
from tests.conftest import ROOT, free_port, wait_until
from tests.support.media import encode_clip
from tests.support.ops_support import base_config


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ(env),
    )
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return proc


def environ(extra: dict[str, str] | None) -> dict[str, str]:
    """This process's environment without systemd's RUNTIME_DIRECTORY, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k != "RUNTIME_DIRECTORY"}
    return {**env, **(extra or {})}


def tandem(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    return run("daemon.cli.tandem", *args, env=env, timeout=timeout)


@pytest.mark.parametrize("command", ["watch", "status"])
@pytest.mark.parametrize(
    ("endpoint", "says"),
    [
        ("localhost:7701", "has no scheme"),
        ("http://127.0.0.1:7701", "http:// is not a ZeroMQ transport"),
        ("tcp://127.0.0.1:70000", "port '70000' is not a number from 0 to 65535"),
    ],
)
@pytest.mark.slow
def test_a_bad_endpoint_is_a_usage_error_naming_it(command: str, endpoint: str, says: str) -> None:
    proc = tandem(command, "--endpoint", endpoint, timeout=30)
    assert proc.returncode == 2
    assert f"tandem {command}: --endpoint: {endpoint!r}" in proc.stderr
    assert says in proc.stderr


@pytest.mark.slow
def test_watch_with_no_daemon_says_so_then_gives_up_at_its_timeout() -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    proc = tandem(
        "watch", "--endpoint", endpoint, "--notice-after", "0.5", "--timeout", "2.5", timeout=30
    )
    assert proc.returncode == 1
    assert time.monotonic() - started < 20
    notice, gave_up = proc.stderr.splitlines()
    assert f"nothing from {endpoint}" in notice and "is tandemd running" in notice
    assert "still waiting" in notice
    assert "gave up after --timeout 2.5 s" in gave_up


@pytest.mark.slow
def test_watch_without_a_timeout_does_not_wait_silently() -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with subprocess.Popen(
        [sys.executable, "-m", "daemon.cli.tandem", "watch", "--endpoint", endpoint],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            # Default --notice-after 10 s; the first stderr line (blocks until it comes).
            assert proc.stderr is not None
            line = proc.stderr.readline()
            assert f"nothing from {endpoint}" in line and "--timeout SECONDS gives up" in line
            assert proc.poll() is None, "it keeps waiting after the notice"
        finally:
            proc.kill()


def stale_socket(path: Path) -> Path:
    """A control.sock left by a tandemd that died: the file, and nobody listening."""
    path.parent.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        s.listen()
    return path


@pytest.mark.slow
def test_status_passes_over_a_dead_daemons_socket_and_says_so(tmp_path: Path) -> None:
    dead = stale_socket(tmp_path / "tandem-dead1" / "control.sock")
    env = {"TMPDIR": str(tmp_path)}
    proc = tandem("status", "--config", str(tmp_path / "none.toml"), "--timeout", "0.5", env=env)
    assert proc.returncode == 1
    assert "no answer from tandemd at ipc:///run/tandem/control.sock" in proc.stderr
    assert f"passed over sockets of dead daemons: {dead}" in proc.stderr


@pytest.mark.slow
def test_status_and_watch_against_a_live_tandemd(tmp_path: Path, tandemd: Any) -> None:
    """The newest /tmp/tandem-*/control.sock belongs to a dead daemon: status asks the
    live one. A reader that leaves the pipe early ends no command in a traceback. A
    stream nobody publishes is named, with the streams that are published."""
    live = tmp_path / "tandem-live"
    text = base_config(tmp_path).replace(
        f'runtime_dir = "{tmp_path / "run"}"', f'runtime_dir = "{live}"'
    )
    text += (
        '[[streams]]\nid = "tone"\nurl = "sine=frequency=440:sample_rate=16000"\n'
        'format = "lavfi"\nvideo = false\n'
    )
    daemon = tandemd(text)
    assert wait_until((live / "control.sock").exists, 30), daemon.log()
    dead = stale_socket(tmp_path / "tandem-dead2" / "control.sock")
    newer = time.time() + 60
    os.utime(dead, (newer, newer))
    env = {"TMPDIR": str(tmp_path)}
    nowhere = str(tmp_path / "none.toml")
    shown = tandem("status", "--config", nowhere, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert f'"pid": {daemon.proc.pid}' in shown.stdout

    # `tandem status | head -0`: the reader is gone before the first write.
    read, write = os.pipe()
    os.close(read)
    piped = subprocess.run(
        [sys.executable, "-m", "daemon.cli.tandem", "status", "--config", nowhere],
        cwd=ROOT,
        env=environ(env),
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    os.close(write)
    assert piped.returncode == 0
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr, piped.stderr

    endpoint = text.split("[publish]\nendpoint = ", 1)[1].split()[0].strip('"')
    watched = tandem(
        "watch", "--endpoint", endpoint, "--stream", "nosuch", "--notice-after", "3",
        "--timeout", "4", timeout=60,
    )  # fmt: skip
    assert watched.returncode == 1
    assert "no records for stream 'nosuch'" in watched.stderr
    assert f"{endpoint} publishes for tone: no such stream here?" in watched.stderr
    assert daemon.stop() == 0


@pytest.mark.slow
def test_analyze_with_a_missing_config_fails_naming_it(tmp_path: Path) -> None:
    clip = encode_clip(tmp_path / "clip.mp4", seconds=1.0, audio=False)
    proc = tandem("analyze", str(clip), "--config", str(tmp_path / "missing.toml"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"tandem: {tmp_path / 'missing.toml'}: cannot read: no such file"
    assert proc.stdout == ""


@pytest.mark.parametrize("program", ["daemon.cli.tandem", "daemon.cli.tandemd"])
def test_version(program: str) -> None:
    proc = run(program, "--version")
    assert proc.returncode == 0
    name = "tandem" if program == "daemon.cli.tandem" else "tandemd"
    assert re.fullmatch(rf"{name} \d+\.\d+\.\d+\S* \(Python 3\.\d+\.\d+\)\n", proc.stdout)


def test_tandemd_help_lists_its_exit_codes() -> None:
    proc = run("daemon.cli.tandemd", "--help")
    assert proc.returncode == 0
    for line in ("0  ", "1  ", "2  "):
        assert re.search(rf"^\s+{line}\S", proc.stdout, re.MULTILINE), proc.stdout
    assert "(default: config.toml)" in proc.stdout


def test_every_subcommand_and_option_has_help_with_defaults_shown() -> None:
    parser = build_parser()
    [sub] = [a for a in parser._actions if a.dest == "command"]
    commands = {"watch", "status", "analyze", "check-config", "keys", "worker", "proxy"}
    assert set(sub.choices) == commands
    helped = {a.dest for a in sub._choices_actions if a.help}
    assert helped == set(sub.choices)
    for name, command in sub.choices.items():
        text = command.format_help()
        for action in command._actions:
            if action.dest in ("help",):
                continue
            assert action.help, f"tandem {name} {action.option_strings or action.dest}: no help"
            if action.default not in (None, False, argparse_suppress()) and action.option_strings:
                shown = f"(default: {action.default})" in text or "default" in action.help
                assert shown, (name, action.dest)
    assert "exit codes:" in sub.choices["watch"].format_help()


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS
