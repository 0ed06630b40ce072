"""Log lines carry their syslog priority, so `journalctl -p warning` filters them: a
`priority` field in every JSON line, and sd-daemon's `<N>` before every line written
to the journal's stream ($JOURNAL_STREAM names its device and inode), from tandemd and
from its children; no prefix on a stream that is not the journal."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.runtime.logs import setup_logging
from tests.conftest import wait_until
from tests.support.ops_support import base_config, spawn


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def journal_id(path: Path) -> str:
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


def test_text_lines_to_the_journal_start_with_their_priority(
    tmp_path: Path, restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "stderr"
    with out.open("w") as stream:
        monkeypatch.setattr("sys.stderr", stream)
        monkeypatch.setenv("JOURNAL_STREAM", journal_id(out))
        setup_logging("debug", "tandemd", "text")
        log = logging.getLogger("test")
        log.debug("d")
        log.info("i")
        log.warning("w")
        log.error("e")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        log.critical("c")
    lines = out.read_text().splitlines()
    assert [line[:3] for line in lines[:4]] == ["<7>", "<6>", "<4>", "<3>"]
    # A traceback's lines are entries of their own: each has the record's priority.
    assert lines[-1].startswith("<2>") and " c" in lines[-1]
    assert all(line.startswith("<3>") for line in lines[4:-1]) and len(lines) > 6
    assert any("ValueError: boom" in line for line in lines)


def test_json_lines_carry_priority_and_no_prefix_off_the_journal(
    tmp_path: Path, restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "stdout"
    with out.open("w") as stream:
        monkeypatch.setattr("sys.stdout", stream)
        monkeypatch.setenv("JOURNAL_STREAM", "1:2")  # another stream than ours
        setup_logging("info", "tandemd", "json")
        logging.getLogger("test").warning("w")
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["priority"] == 4 and record["level"] == "warning"


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_tandemd_and_its_worker_log_priorities_to_the_journal(tmp_path: Path) -> None:
    """A real tandemd whose stdout is "the journal": format auto picks JSON, and every
    line of tandemd and of its worker starts with <N> matching its JSON priority."""
    config = base_config(tmp_path, audio_workers=1)
    (tmp_path / "config.toml").write_text(config)
    log_path = tmp_path / "journal"
    log_path.touch()
    env = {"JOURNAL_STREAM": journal_id(log_path), "TANDEM_LOG_FORMAT": ""}
    proc = spawn(tmp_path / "config.toml", log_path, env)
    try:

        def logged(text: str) -> bool:
            return text in log_path.read_text()

        assert wait_until(lambda: logged("registered with tandemd"), 40), log_path.read_text()
        (tmp_path / "config.toml").write_text(config + "[bogus]\n")
        proc.send_signal(signal.SIGHUP)  # refused: an error line
        assert wait_until(lambda: logged("reload rejected"), 10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        proc.kill()
        proc.wait()
    entries = []
    for line in log_path.read_text().splitlines():
        match = re.fullmatch(r"<(\d)>(\{.*\})", line)
        assert match, line  # every line: <N>{json}
        record = json.loads(match[2])
        assert record["priority"] == int(match[1])
        entries.append(record)
    by_message = {r["message"].split(":")[0]: r for r in entries}
    assert by_message["reload rejected, running config kept"]["priority"] == 3
    worker = [r for r in entries if r["process"] == "worker[audio]"]
    assert worker and all(r["priority"] in (4, 6, 7) for r in worker)
    assert {r["priority"] for r in entries} >= {3, 6}
