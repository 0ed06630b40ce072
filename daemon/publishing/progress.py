"""`tandem analyze`'s progress bar: media seconds analysed of the file's duration, on
stderr, only where someone watches it (a terminal), never in a pipe or a log."""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from tqdm import tqdm


def show_progress(mode: str, stream: TextIO) -> bool:
    """`always`, `never`, or for `auto` whether `stream` is a terminal."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _columns(stream: TextIO) -> int:
    """The terminal's width; 80 where it reports none (a fresh pty says 0 x 0)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError, AttributeError):
        return 80


class Progress:
    """A bar that moves to the media time of the latest record."""

    def __init__(self, stream: str, duration_s: float | None, out: TextIO | None = None) -> None:
        self.bar: Any = tqdm(
            total=round(duration_s, 1) if duration_s else None,
            desc=stream,
            unit="s",
            unit_scale=False,
            ncols=_columns(out if out is not None else sys.stderr),
            leave=False,
            file=out,  # None: stderr
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s media "
            "[{elapsed}<{remaining}, {rate_fmt}]"
            if duration_s
            else None,
        )
        self.done = 0.0

    def at(self, media_s: float) -> None:
        total = self.bar.total
        target = min(media_s, total) if total else media_s
        if target > self.done:
            self.bar.update(target - self.done)
            self.done = target

    def write(self, line: str) -> None:
        self.bar.write(line)

    def close(self) -> None:
        self.bar.close()
