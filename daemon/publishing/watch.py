"""`tandem watch`'s account of silence: a notice on stderr when nothing it asked for came
for a while (nothing at all: is tandemd there? other streams only: is the id right?),
and the end of the wait with `--timeout`."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Silence:
    def __init__(
        self,
        endpoint: str,
        stream: str | None,
        notice_after_s: float,
        timeout_s: float | None,
        out: TextIO | None = None,
    ) -> None:
        self.endpoint, self.stream = endpoint, stream
        self.notice_after_s, self.timeout_s = notice_after_s, timeout_s
        self.out = out if out is not None else sys.stderr
        self.since = time.monotonic()
        self.others: set[str] = set()  # streams heard while waiting for `stream`
        self.noticed = False

    def heard(self, now: float) -> None:
        self.since, self.noticed = now, False

    def other(self, stream: str) -> None:
        self.others.add(stream)

    def given_up(self, now: float) -> bool:
        """Whether to stop waiting (after saying why); prints the notice when due."""
        silent = now - self.since
        if self.timeout_s is not None and silent >= self.timeout_s:
            self._say(f"{self.why(silent)}; gave up after --timeout {self.timeout_s:g} s")
            return True
        if not self.noticed and silent >= self.notice_after_s:
            self.noticed = True
            wait = "" if self.timeout_s is not None else "; --timeout SECONDS gives up"
            self._say(f"{self.why(silent)} (still waiting{wait})")
        return False

    def why(self, silent_s: float) -> str:
        if self.stream is None or not self.others:
            asked = "nothing" if self.stream is None else f"nothing for stream {self.stream!r}"
            return (
                f"{asked} from {self.endpoint} in {silent_s:.0f} s: is tandemd running, "
                "and is this its publish.endpoint?"
            )
        heard = ", ".join(sorted(self.others))
        return (
            f"no records for stream {self.stream!r} in {silent_s:.0f} s, but {self.endpoint} "
            f"publishes for {heard}: no such stream here? (ids are case-sensitive)"
        )

    def _say(self, text: str) -> None:
        print(f"tandem watch: {text}", file=self.out, flush=True)
