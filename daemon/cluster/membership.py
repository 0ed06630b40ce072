"""Where the shards come from: the Ready members of the cluster, as `host:port` of each
member's health endpoint (the metrics port, which serves /healthz and /readyz).

A provider runs in a thread of its own and never blocks tandemd's loop: `ready()` returns
its latest view, None until it has completed a first full round (a shard that has not yet
seen its peers owns nothing, rather than everything).
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

log = logging.getLogger("cluster")


class Membership(Protocol):
    def ready(self) -> frozenset[str] | None: ...

    def close(self) -> None: ...


def ready(member: str, timeout_s: float) -> bool:
    """Whether `member`'s /readyz answers 200: alive, its workers registered and its
    streams started. A shard still starting keeps its share elsewhere until then (the
    overlap, not a gap, is the price), as a pod's readiness does on Kubernetes."""
    try:
        with urllib.request.urlopen(f"http://{member}/readyz", timeout=timeout_s) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError, ValueError):
        return False


class Poller:
    """Calls `probe()` every `interval_s` in a daemon thread and keeps its last answer."""

    def __init__(self, probe: Callable[[], frozenset[str]], interval_s: float, name: str) -> None:
        self._probe = probe
        self._interval_s = interval_s
        self._view: frozenset[str] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def ready(self) -> frozenset[str] | None:
        return self._view

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                view = self._probe()
            except Exception:  # a provider's bug must not end membership for good
                log.exception("membership probe failed")
            else:
                if view != self._view:
                    log.info("members ready: %s", ", ".join(sorted(view)) or "none")
                self._view = view
            self._stop.wait(self._interval_s)


class StaticMembership:
    """Peers listed in config (systemd installs on several hosts): a peer is Ready while
    its /readyz answers 200, `failures` probes in a row failing make it not Ready. This
    shard is always one of the members."""

    def __init__(
        self,
        this: str,
        peers: Iterable[str],
        interval_s: float = 1.0,
        timeout_s: float = 0.5,
        failures: int = 2,
    ) -> None:
        self.this = this
        self.peers = sorted(set(peers) - {this})
        self.timeout_s = timeout_s
        self.failures = failures
        self._missed = dict.fromkeys(self.peers, failures)  # not Ready until seen
        self._pool = ThreadPoolExecutor(max(1, len(self.peers)), thread_name_prefix="probe")
        self._poller = Poller(self._round, interval_s, "membership")

    def ready(self) -> frozenset[str] | None:
        return self._poller.ready()

    def close(self) -> None:
        self._poller.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _round(self) -> frozenset[str]:
        answers = self._pool.map(lambda p: ready(p, self.timeout_s), self.peers)
        for peer, up in zip(self.peers, answers, strict=True):
            self._missed[peer] = 0 if up else self._missed[peer] + 1
        alive = {p for p, missed in self._missed.items() if missed < self.failures}
        return frozenset({self.this, *alive})
