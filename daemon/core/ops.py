"""tandemd's operator hooks, called from its main loop: systemd's notify protocol and
watchdog, SIGHUP reload, the control socket (`tandem status`), the flow gauges.

Kept apart from `service` so that the loop only calls `tick`; each concern lives in its
own module (notify, reload, control, stages).
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import TYPE_CHECKING

from daemon.control.answers import start_control
from daemon.core.health import Health
from daemon.core.metrics_seed import seed_daemon, seed_stream
from daemon.core.notify import Notifier, WedgeHook
from daemon.core.reload import Reloader
from daemon.core.stages import sample_flow

if TYPE_CHECKING:
    from daemon.core.service import Tandemd

# The flow gauges are sampled, not kept per item: a loop turn per message would otherwise
# pay a label lookup per stream. Scrapes come seconds apart.
FLOW_SAMPLE_S = 0.25


class Operations:
    def __init__(
        self,
        service: Tandemd,
        notifier: Notifier | None,
        wedge: WedgeHook | None,
        config_path: str | None,
    ) -> None:
        self.service = service
        self.notifier = notifier if notifier is not None else Notifier(None)
        self.wedge = wedge  # a test hook (daemon/core/notify.py); None in production
        # SIGHUP reloads streams from config_path (daemon/core/reload.py), and a cluster's
        # membership changes go the same way; None: neither.
        shard = service.shard
        wanted = config_path is not None or shard is not None
        self.reloader = Reloader(service, config_path, shard) if wanted else None
        self.rates = start_control(service)  # `tandem status` (daemon/control/answers.py)
        self._flow_sampled = float("-inf")
        self.health = Health()  # what /healthz and /readyz answer (daemon/core/httpd.py)
        self._reload_done: str | None = None  # READY=1's status once the reload settles
        seed_daemon(service.metrics)  # counters at 0 from the start (daemon/core/metrics_seed.py)
        for stream in service.config.streams:
            seed_stream(service.metrics, stream, service.config)

    def install_signals(self) -> None:
        if self.wedge is not None:
            self.wedge.install()
        if self.reloader is not None:
            signal.signal(signal.SIGHUP, self._on_reload_signal)

    def _on_reload_signal(self, signum: int, frame: FrameType | None) -> None:
        assert self.reloader is not None
        self.reloader.requested = True  # the loop reloads (tick)

    def ready(self, status: str) -> None:
        self.notifier.ready(status)

    def tick(self, now: float) -> None:
        """Once per loop turn. systemd's watchdog is fed from here, so a wedged loop
        stops feeding it; pings start with READY=1, as systemd's watchdog does."""
        service = self.service
        self.health.turned(now)
        self.notifier.watchdog(now, service.ingest_started and self.healthy())
        if self.wedge is not None:
            self.wedge.maybe_wedge()
        if self.reloader is not None and not service.stop_requested:
            self._reload_tick(self.reloader, now)
            self._membership_tick(self.reloader)
        if now - self._flow_sampled >= FLOW_SAMPLE_S:
            sample_flow(service.metrics, service.dispatcher, service.hub)
            self._flow_sampled = now
            self.health.missing = self.not_ready()
            self.health.unhealthy = tuple(f"{name}: left down" for name in self.given_up())
        self.rates.tick(now)

    def _reload_tick(self, reloader: Reloader, now: float) -> None:
        """SIGHUP: RELOADING=1 to systemd, the reload, then READY=1 once its streams have
        stopped and started (at once when it was refused), with a STATUS= that says
        whether the new config was taken: `systemctl status` shows a failed reload."""
        if reloader.requested:
            reloader.requested = False
            self.notifier.reloading()
            error = reloader.reload()
            if error is not None:
                self.notifier.reloaded(f"reload failed, running config kept: {error}")
            else:
                self._reload_done = f"reloaded {reloader.path}"
        reloader.tick(now)
        if self._reload_done is not None and not reloader.busy:
            self.notifier.reloaded(self._reload_done)
            self._reload_done = None

    def _membership_tick(self, reloader: Reloader) -> None:
        """The cluster's Ready members changed: this shard's streams follow."""
        shard = self.service.shard
        # Not before its own workers are ready: at a cold start every shard would
        # otherwise see no peer ready yet and take every stream for a few seconds.
        if shard is None or not self.service.ingest_started:
            return
        if (share := shard.changed()) is not None:
            reloader.apply(share, "membership changed")

    def healthy(self) -> bool:
        """The loop is turning (we are in it) and no local worker has exhausted its
        restart budget: otherwise systemd's watchdog restarts tandemd and its workers."""
        return not self.given_up()

    def given_up(self) -> list[str]:
        """Local workers left down after exhausting their restart budget."""
        children = self.service.children.children.values()
        return [c.name for c in children if c.given_up and c.name.startswith("worker-")]

    def not_ready(self) -> tuple[str, ...]:
        """What /readyz waits for: the configured local workers registered, the
        configured streams started (the sockets are bound before the loop runs)."""
        service = self.service
        missing = []
        for kind, wanted in service.wanted_workers.items():
            if (have := service.dispatcher.workers(kind)) < wanted:
                missing.append(f"{have} of {wanted} local {kind} workers registered")
        if not service.ingest_started:
            missing.append(f"{len(service.config.streams)} streams not started yet")
        if service.shard is not None and service.shard.members is None:
            missing.append("cluster membership not known yet")
        return tuple(missing)

    def stopping(self) -> None:
        self.notifier.stopping()

    def close(self) -> None:
        self.notifier.close()
