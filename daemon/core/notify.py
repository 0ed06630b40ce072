"""systemd's notify protocol (sd_notify), a few lines over a unix datagram socket.

tandemd sends READY=1 once its sockets are bound and its local workers registered,
WATCHDOG=1 from its main loop only while healthy, RELOADING=1 (with MONOTONIC_USEC) on
SIGHUP and READY=1 once the reload is done, STOPPING=1 when it shuts down, and STATUS=
lines a `systemctl status` shows. Without $NOTIFY_SOCKET every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import MutableMapping
from types import FrameType

log = logging.getLogger("notify")


class Notifier:
    """Sends notify messages; `watchdog_s` is systemd's WatchdogSec (None: no watchdog)."""

    def __init__(self, address: str | None, watchdog_s: float | None = None) -> None:
        self.address = address
        self.watchdog_s = watchdog_s
        self._last_ping = float("-inf")
        self._sock: socket.socket | None = None
        if address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @classmethod
    def from_env(cls, env: MutableMapping[str, str]) -> Notifier:
        """Read and remove $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID, so child
        processes neither inherit nor misuse them (sd_notify's unset_environment)."""
        address = env.pop("NOTIFY_SOCKET", None)
        usec = env.pop("WATCHDOG_USEC", None)
        pid = env.pop("WATCHDOG_PID", None)
        watchdog_s = None
        if usec and usec.isdigit() and int(usec) > 0 and (pid is None or pid == str(os.getpid())):
            watchdog_s = int(usec) / 1e6
        return cls(address, watchdog_s)

    @property
    def ping_interval_s(self) -> float | None:
        """Pings go out at half the watchdog timeout, as sd_watchdog_enabled advises."""
        return None if self.watchdog_s is None else self.watchdog_s / 2

    def send(self, *lines: str) -> bool:
        if self._sock is None or not self.address:
            return False
        address = self.address
        if address.startswith("@"):  # abstract namespace
            address = "\0" + address[1:]
        try:
            self._sock.sendto("\n".join(lines).encode(), address)
        except OSError as exc:
            log.warning("cannot notify systemd at %s: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def reloading(self) -> None:
        """A reload starts. MONOTONIC_USEC is CLOCK_MONOTONIC now, which systemd's
        Type=notify-reload (systemd >= 253) requires to match the reload to its signal."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading")

    def reloaded(self, status: str) -> None:
        """The reload is done, taken or refused: STATUS= says which."""
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def stopping(self, status: str = "stopping") -> None:
        self.send("STOPPING=1", f"STATUS={status}")

    def watchdog(self, now: float, healthy: bool) -> bool:
        """Ping when due and healthy; returns whether a ping went out."""
        interval = self.ping_interval_s
        if interval is None or not healthy or now - self._last_ping < interval:
            return False
        self._last_ping = now
        return self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class WedgeHook:
    """A test hook, off unless $TANDEM_TEST_WEDGE_S is set: SIGUSR2 makes the main loop
    sleep that many seconds once, as a wedged loop would, so a test can see the watchdog
    pings stop. The handler only records; the loop sleeps."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.requested = False

    @classmethod
    def from_env(cls, env: MutableMapping[str, str]) -> WedgeHook | None:
        value = env.get("TANDEM_TEST_WEDGE_S")
        try:
            return cls(float(value)) if value else None
        except ValueError:
            log.warning("TANDEM_TEST_WEDGE_S = %r: not a number; test hook off", value)
            return None

    def install(self) -> None:
        signal.signal(signal.SIGUSR2, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def maybe_wedge(self) -> None:
        if self.requested:
            self.requested = False
            log.warning("test hook: main loop wedged for %.1f s", self.seconds)
            time.sleep(self.seconds)
