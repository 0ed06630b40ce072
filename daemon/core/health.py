"""What `/healthz` and `/readyz` answer: written by tandemd's main loop, read by the
metrics server's thread.

Healthy: the loop turned within STALE_S and no local worker has exhausted its restart
budget (the watchdog's rule, daemon/core/ops.py). Ready: the sockets are bound, the local
workers the config names have registered and every configured stream's ingest process
has started; until then `missing` says what is not there yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# A loop that turns at least every LOOP_TICK_MS (20 ms) and has not turned for this long
# is wedged: far above any GC pause or scheduling delay on a loaded machine.
STALE_S = 5.0


@dataclass
class Health:
    """Plain attributes, each replaced whole by the loop (atomic under the GIL)."""

    turned_at: float = field(default_factory=time.monotonic)
    missing: tuple[str, ...] = ("main loop not started",)
    unhealthy: tuple[str, ...] = ()  # e.g. a local worker left down

    def turned(self, now: float) -> None:
        self.turned_at = now

    def live(self, now: float) -> tuple[bool, str]:
        """(healthy, the body's text)."""
        idle = now - self.turned_at
        if idle > STALE_S:
            return False, f"main loop has not turned for {idle:.1f} s\n"
        if self.unhealthy:
            return False, "".join(f"{line}\n" for line in self.unhealthy)
        return True, "ok\n"

    def ready(self, now: float) -> tuple[bool, str]:
        alive, text = self.live(now)
        if not alive:
            return False, text
        if self.missing:
            return False, "".join(f"not ready: {line}\n" for line in self.missing)
        return True, "ready\n"
