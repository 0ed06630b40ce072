"""Logging set-up shared by tandemd and its child processes: one line per event."""

from __future__ import annotations

import logging
import sys
import time


class _RateLimit(logging.Filter):
    """Drops repeats of a message (same format and first argument, e.g. the peer) within
    `interval_s`, for records logged with `extra=RATE_LIMITED`."""

    def __init__(self, interval_s: float = 10.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "rate_limit", False):
            return True
        first_arg = str(record.args[0]) if isinstance(record.args, tuple) and record.args else ""
        key = (record.name, f"{record.msg}|{first_arg}")
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < self.interval_s:
            return False
        if len(self._last) > 10000:  # bounded: forget everything rather than grow
            self._last.clear()
        self._last[key] = now
        return True


def setup_logging(level: str, process: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s")
    )
    handler.addFilter(_RateLimit())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


RATE_LIMITED = {"rate_limit": True}
