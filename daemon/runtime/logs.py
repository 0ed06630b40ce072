"""Logging set-up shared by tandemd and its child processes: one line per event.

Two formats: `text` (a human line on stderr) and `json` (one JSON object per line on
stdout, for journald and log shippers). `auto` picks json when stdout goes to the
journal (systemd sets $JOURNAL_STREAM), text otherwise. tandemd passes its resolved
format to its children in $TANDEM_LOG_FORMAT, so all of a service's lines match.
Both formatters redact secrets in URLs (streams.redact) from the message and traceback.
Every JSON line carries its syslog `priority`; when the stream written to is the journal
($JOURNAL_STREAM names its device and inode), every line starts with sd-daemon(3)'s
`<N>`, which journald stores as the entry's PRIORITY, so `journalctl -p warning` works.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import Literal, TextIO

from streams import redact

FORMAT_ENV = "TANDEM_LOG_FORMAT"
LogFormat = Literal["auto", "json", "text"]


class _RateLimit(logging.Filter):
    """Drops repeats of a message within `interval_s`, for records logged with
    `extra=RATE_LIMITED` (a repeat: same format and first argument, e.g. the peer) or
    `extra=rate_limited(...)` (a repeat: same format and the same key, e.g. socket and
    reason, so one kind of refusal never hides another)."""

    def __init__(self, interval_s: float = 10.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "rate_limit", False):
            return True
        first_arg = str(record.args[0]) if isinstance(record.args, tuple) and record.args else ""
        key = (record.name, f"{record.msg}|{getattr(record, 'rate_key', first_arg)}")
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < self.interval_s:
            return False
        if len(self._last) > 10000:  # bounded: forget everything rather than grow
            self._last.clear()
        self._last[key] = now
        return True


def priority(record: logging.LogRecord) -> int:
    """The record's syslog priority (RFC 5424): 2 critical, 3 error, 4 warning, 6 info,
    7 debug."""
    for level, value in ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4)):
        if record.levelno >= level:
            return value
    return 6 if record.levelno >= logging.INFO else 7


class JournalPrefix(logging.Formatter):
    """`<N>` before each line of another formatter's output (a traceback's lines too:
    journald reads each line as an entry)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record)}>"
        return "\n".join(prefix + line for line in self.inner.format(record).split("\n"))


def to_journal(stream: TextIO) -> bool:
    """Whether `stream` is connected to the journal: $JOURNAL_STREAM is
    "<device>:<inode>" of the stream systemd gave the service (sd-daemon's check)."""
    expected = os.environ.get("JOURNAL_STREAM")
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False
    return bool(expected) and expected == f"{st.st_dev}:{st.st_ino}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (UTC, ISO 8601), level, priority (syslog),
    process, pid, logger, message, and `exception` when there is one."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "priority": priority(record),
            "process": self.process,
            "pid": record.process,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """A human line; secrets in URLs redacted (streams.redact), tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def resolve_format(fmt: str | None) -> Literal["json", "text"]:
    chosen = fmt or os.environ.get(FORMAT_ENV) or "auto"
    if chosen == "auto":
        return "json" if os.environ.get("JOURNAL_STREAM") else "text"
    return "json" if chosen == "json" else "text"


def setup_logging(level: str, process: str, fmt: str | None = None) -> Literal["json", "text"]:
    """Install the one handler; returns the format used. `fmt` None: the parent's
    ($TANDEM_LOG_FORMAT), else auto."""
    resolved = resolve_format(fmt)
    if resolved == "json":
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter(process))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            TextFormatter(f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s")
        )
    if to_journal(handler.stream) and handler.formatter is not None:
        handler.setFormatter(JournalPrefix(handler.formatter))
    handler.addFilter(_RateLimit())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    return resolved


RATE_LIMITED = {"rate_limit": True}


def rate_limited(*key: object) -> dict[str, object]:
    """`extra=` for a record whose repeats are dropped per `key` (e.g. socket, reason)."""
    return {"rate_limit": True, "rate_key": "|".join(str(part) for part in key)}
