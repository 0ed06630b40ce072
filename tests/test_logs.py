"""Structured logs: JSON lines on stdout (tandemd and its children), one line per state
change, repeats rate-limited."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.runtime.logs import RATE_LIMITED, resolve_format, setup_logging
from tests.conftest import wait_until
from tests.support.ops_support import base_config


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_and_rate_limit(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert setup_logging("info", "tandemd", "json") == "json"
    log = logging.getLogger("dispatch")
    for _ in range(5):
        log.warning("dropped a message from peer %r: %s", b"w1", "bad", extra=RATE_LIMITED)
    log.warning("dropped a message from peer %r: %s", b"w2", "bad", extra=RATE_LIMITED)
    log.info("stream %s: %s -> %s", "cam", "starting", "running")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["message"] for r in lines] == [
        "dropped a message from peer b'w1': bad",
        "dropped a message from peer b'w2': bad",
        "stream cam: starting -> running",
    ]
    assert lines[0]["level"] == "warning" and lines[0]["process"] == "tandemd"
    assert lines[0]["logger"] == "dispatch" and lines[0]["ts"].endswith("+00:00")


def test_auto_is_json_under_the_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TANDEM_LOG_FORMAT", raising=False)
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    assert resolve_format("auto") == "text"
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    assert resolve_format("auto") == "json"
    assert resolve_format("text") == "text"


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_tandemd_and_children_log_json_lines(tmp_path: Path, tandemd: Any) -> None:
    config = base_config(tmp_path, audio_workers=1).replace(
        "[log]\n", '[log]\nformat = "json"\n'
    ) + (
        '[[streams]]\nid = "tone"\nurl = "sine=frequency=440:sample_rate=16000"\n'
        'format = "lavfi"\nvideo = false\n'
    )
    daemon = tandemd(config)
    assert wait_until(lambda: "starting -> running" in daemon.log(), 60), daemon.log()
    assert daemon.stop() == 0
    records = [json.loads(line) for line in daemon.log().splitlines()]  # every line is JSON
    processes = {r["process"] for r in records}
    assert {"tandemd", "worker[audio]", "ingest[tone]"} <= processes, processes
    running = [r for r in records if r["message"].endswith("starting -> running: media flowing")]
    assert len(running) == 1  # one line per state change
