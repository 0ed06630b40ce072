"""tandemd's lifecycle: bind, start children, run the event loop, shut down in stage order.

One thread runs the loop; signal handlers only record the request. Shutdown: stop the
sources, drain what tandemd holds through the workers, publish the last windows, stop
the workers, close the sockets, all within SHUTDOWN_BUDGET_S.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import zmq
from prometheus_client import CollectorRegistry
from zmq.auth.thread import ThreadAuthenticator

from daemon.cluster.providers import membership_for
from daemon.cluster.shard import Shard
from daemon.config import Config, LogConfig, StreamConfig
from daemon.control.server import ControlServer, events_handler
from daemon.core.children import Children
from daemon.core.metrics import Metrics
from daemon.core.metrics_seed import ingest_child, seed_children, seed_stream
from daemon.core.notify import Notifier, WedgeHook
from daemon.core.ops import Operations
from daemon.core.pipeline import Pipeline
from daemon.core.snapshot import (
    ClusterView,
    ProcessView,
    QueueView,
    ServiceSnapshot,
    StreamView,
    WorkerView,
)
from daemon.core.startup import (
    StartupError,
    event_snapshots,
    ingest_launch,
    local_worker_keys,
    runtime_dir,
    worker_launch,
)
from daemon.ingest.hub import bind_ingest
from daemon.publishing.publisher import Publisher
from daemon.wire import protocol
from daemon.wire.endpoints import HandshakeMonitor, bind_server
from daemon.wire.security import AllowList, SecurityError, load_public, start_authenticator
from daemon.wire.vocabulary import KINDS, Kind
from daemon.workers.gpus import local_workers, visible_gpus

log = logging.getLogger("tandemd")
LOOP_TICK_MS = 20
# Work that visits every stream or child (due windows, exited children) runs at most this
# often, not on every loop turn: turns come per message burst, hundreds a second with many
# streams, and those scans took a quarter of the loop's busy time at 40 streams. A record
# is published, and a child's exit noticed, at most this much later.
SCAN_S = 0.02
WORKER_READY_TIMEOUT_S = 30.0
# An ingest process silent this long (its stats come every 0.5 s) is wedged: killed.
INGEST_LIVENESS_S = 5.0
INGEST_STOP_GRACE_S = 1.5
DRAIN_BUDGET_S = 4.0
WORKER_STOP_GRACE_S = 2.0


class Tandemd:
    def __init__(
        self,
        config: Config,
        registry: CollectorRegistry | None = None,
        notifier: Notifier | None = None,
        wedge: WedgeHook | None = None,
        config_path: str | None = None,
    ) -> None:
        # With [cluster], this shard runs only the streams it owns: none until its
        # membership has looked at the others (daemon/cluster/shard.py).
        self.shard = _shard(config)
        if self.shard is not None:
            config = self.shard.owned()
        self.config = config
        self.metrics = Metrics(registry if registry is not None else CollectorRegistry())
        self.stop_requested = False
        self._scanned_at = float("-inf")
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.runtime_dir = runtime_dir(config)
        self.children = Children(
            on_restart=lambda name: self.metrics.child_restarts.labels(name).inc()
        )
        self.monitors: list[tuple[HandshakeMonitor, zmq.Socket[bytes]]] = []
        self.local_keys: tuple[Path, Path] | None = None  # set when dispatch is secured
        # The authenticator runs before any secured socket binds (fail closed).
        self.authenticator = self._start_authenticator()
        self.publisher = self._bind_publisher()
        self.pipeline = Pipeline(
            config,
            self.metrics,
            self.publisher,
            self._bind_dispatch(),
            self._bind_ingest(),
            event_snapshots(config, self.runtime_dir),
            on_dead_child=self.children.kill,
        )
        # What the loop polls and ticks; the pipeline made them with its handlers.
        self.dispatcher = self.pipeline.dispatcher
        self.hub = self.pipeline.hub
        self.control = self._bind_control()
        self._ingest_started = False
        self._started_at = time.monotonic()
        # systemd notify and watchdog, SIGHUP reload, control socket (daemon/core/ops.py)
        self.ops = Operations(self, notifier, wedge, config_path)
        self._worker_counts: dict[Kind, int] = {}

    # -- start-up -----------------------------------------------------------------
    def _start_authenticator(self) -> ThreadAuthenticator | None:
        sections = [
            ("dispatch", self.config.dispatch),
            ("publish", self.config.publish),
            ("control", self.config.control),
        ]
        allowed = {s.curve_allowed_keys for _, s in sections if s.secured}
        if not allowed:
            return None
        if len(allowed) > 1:
            raise StartupError(
                "dispatch, publish and control must share one curve_allowed_keys directory"
            )
        try:
            extra = []
            if self.config.dispatch.secured:
                secret = self.config.dispatch.curve_secret_key
                self.local_keys = local_worker_keys(self.runtime_dir, secret)
                extra.append(load_public(self.local_keys[1]))
            return start_authenticator(self.ctx, AllowList(allowed.pop(), extra))
        except SecurityError as exc:
            raise StartupError(f"curve_allowed_keys: {exc}") from exc

    def _bind(
        self, section: str, kind: int, endpoint: str, secret: str, **kwargs: Any
    ) -> zmq.Socket[bytes]:
        try:
            sock = bind_server(self.ctx, kind, endpoint, curve_secret_key=secret, **kwargs)
        except zmq.ZMQError as exc:
            raise StartupError(f"{section}.endpoint = {endpoint!r}: cannot bind: {exc}") from exc
        except SecurityError as exc:
            raise StartupError(f"{section}.curve_secret_key: {exc}") from exc
        self.monitors.append((HandshakeMonitor(sock, section, self.metrics), sock))
        return sock

    def _bind_publisher(self) -> Publisher:
        cfg = self.config.publish
        options = {zmq.SNDHWM: cfg.hwm}
        sock = self._bind("publish", zmq.PUB, cfg.endpoint, cfg.curve_secret_key, options=options)
        # Batched: flushed by the pipeline with each scan's records (every SCAN_S).
        return Publisher(sock, self.metrics.publish_dropped, batched=True)

    def _bind_control(self) -> ControlServer:
        cfg = self.config.control
        endpoint = cfg.endpoint or f"ipc://{self.runtime_dir}/control.sock"
        sock = self._bind("control", zmq.ROUTER, endpoint, cfg.curve_secret_key, max_bytes=65536)
        control = ControlServer(
            sock, on_rejected=lambda: self.metrics.rejected.labels("control", "invalid").inc()
        )
        for request, answer in (
            ("active_events", self.pipeline.active_events),
            ("recent_events", self.pipeline.recent_events),
        ):
            control.handle(request, events_handler(request, answer))
        return control

    def _bind_dispatch(self) -> zmq.Socket[bytes]:
        cfg = self.config.dispatch
        endpoint = cfg.endpoint or f"ipc://{self.runtime_dir}/workers.sock"
        return self._bind(
            "dispatch", zmq.ROUTER, endpoint, cfg.curve_secret_key, max_bytes=cfg.max_message_bytes
        )

    def _bind_ingest(self) -> zmq.Socket[bytes]:
        endpoint = f"ipc://{self.runtime_dir}/ingest.sock"
        try:
            return bind_ingest(self.ctx, endpoint, self.config.dispatch.max_message_bytes)
        except zmq.ZMQError as exc:
            raise StartupError(
                f"runtime_dir = {str(self.runtime_dir)!r}: cannot bind: {exc}"
            ) from exc

    def _add_workers(self) -> None:
        gpus = visible_gpus()
        for kind in KINDS:
            pool = getattr(self.config.workers, kind)
            devices = local_workers(pool.processes, pool.device, gpus)
            self._worker_counts[kind] = len(devices)
            for n, device in enumerate(devices):
                name = f"worker-{kind}-{n}"
                launch = worker_launch(
                    self.config,
                    name,
                    kind,
                    pool,
                    device,
                    n,
                    self.dispatcher.endpoint,
                    self.local_keys,
                )
                self.children.add(name, launch.argv(), restart=True, restart_on_success=True)
        seed_children(self.metrics, self.children.children)  # restarts at 0 from the start

    @property
    def wanted_workers(self) -> dict[Kind, int]:
        """Local workers per kind the config asks for (empty until they are added)."""
        return dict(self._worker_counts)

    @property
    def ingest_started(self) -> bool:
        return self._ingest_started

    @property
    def started_at(self) -> float:
        return self._started_at

    def _add_ingest(self) -> None:
        for stream in self.config.streams:
            self.add_ingest_child(stream)

    def add_ingest_child(self, stream: StreamConfig) -> None:
        launch = ingest_launch(self.config, stream.id, self.hub.endpoint)
        self.children.add(
            ingest_child(stream.id),
            launch.argv(),
            restart=stream.mode == "live",
            restart_on_success=stream.mode == "live",
            stdin=launch.stdin(),
        )

    def _workers_ready(self) -> bool:
        for kind in KINDS:
            wanted = self._worker_counts.get(kind, 0)
            if self.dispatcher.workers(kind) < wanted:
                return False
        return True

    # -- run ----------------------------------------------------------------------
    def run(self) -> int:
        self._install_signals()
        self._add_workers()
        log.info(
            "results on %s; workers connect to %s; control on %s",
            self.publisher.endpoint,
            self.dispatcher.endpoint,
            self.control.endpoint,
        )
        poller = zmq.Poller()
        poller.register(self.hub.sock, zmq.POLLIN)
        poller.register(self.dispatcher.sock, zmq.POLLIN)
        poller.register(self.control.sock, zmq.POLLIN)
        for monitor, _ in self.monitors:
            poller.register(monitor.sock, zmq.POLLIN)
        while not self.stop_requested:
            self._turn(poller)
            self._maybe_start_ingest()
        self._shutdown(poller)
        return 0

    def _turn(self, poller: zmq.Poller) -> None:
        events = dict(poller.poll(LOOP_TICK_MS))
        if self.hub.sock in events:
            self.hub.handle_incoming()
        if self.dispatcher.sock in events:
            self.dispatcher.handle_incoming()
        if self.control.sock in events:
            self.control.handle_incoming()
        for monitor, _ in self.monitors:
            if monitor.sock in events:
                monitor.handle_incoming()
        self.dispatcher.dispatch()
        self.hub.flush_credits()
        now = time.monotonic()
        self.dispatcher.tick(now)
        if now - self._scanned_at >= SCAN_S:
            self._scanned_at = now
            self._scan(now)
        self.pipeline.degrader.tick(now)
        self.ops.tick(now)

    def _scan(self, now: float) -> None:
        """Start and reap children, publish the windows that are due."""
        for child in self.children.tick(now):
            if child.name.startswith("worker-"):
                # A local worker that exited is dead now: no need to wait for heartbeats.
                self.dispatcher.forget_child(child.name)
            elif child.name.startswith("ingest-"):
                self._ingest_exited(child.name.removeprefix("ingest-"), child.exit_code)
        for stream in self.hub.silent(now, INGEST_LIVENESS_S):
            # Wedged (stopped, deadlocked): killed, and restarted as a crash would be.
            self.hub.links[stream].last_heard = now
            self.children.kill(ingest_child(stream))
        self.pipeline.publish_due(now)

    def _ingest_exited(self, stream: str, code: int | None) -> None:
        """An ingest process gone without saying its stream ended (killed, crashed): a
        live one restarts and its timeline goes on; a file's stream ends, failed, so its
        windows and status go out instead of waiting for it forever."""
        link = self.hub.links.get(stream)
        state = self.pipeline.streams.get(stream)
        if link is None or link.ended is not None or state is None or state.live:
            return
        if code == -signal.SIGTERM:
            return  # tandemd asked it to stop (shutdown, reload): not a failure
        error = f"stream {stream!r}: its ingest process exited with code {code}"
        log.error("%s", error)
        link.ended = "error"
        end = protocol.IngestEnd(
            v=protocol.PROTOCOL_VERSION, stream=stream, reason="error", error=error
        )
        self.pipeline.on_end(stream, end)

    def _maybe_start_ingest(self) -> None:
        if self._ingest_started:
            return
        waited = time.monotonic() - self._started_at
        if self._workers_ready() or waited > WORKER_READY_TIMEOUT_S:
            if not self._workers_ready():
                log.warning(
                    "workers not all registered after %.0f s; starting streams anyway", waited
                )
            self._add_ingest()
            self._ingest_started = True
            status = (
                f"ready: {len(self.config.streams)} streams, "
                f"{self.dispatcher.workers('vision')} vision and "
                f"{self.dispatcher.workers('audio')} audio workers"
            )
            log.info("%s", status)
            self.ops.ready(status)

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.ops.install_signals()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_requested and signum == signal.SIGINT:
            os._exit(130)  # a second Ctrl-C: stop waiting (children die with us)
        self.stop_requested = True

    # -- the surface reload (daemon/core/reload.py), status and the CLI act through ------
    def snapshot(self) -> ServiceSnapshot:
        """What tandemd is doing now (daemon/core/snapshot.py), for status and the CLI."""
        now = time.monotonic()
        return ServiceSnapshot(
            pid=os.getpid(),
            uptime_s=round(now - self._started_at, 3),
            ready=self._ingest_started,
            healthy=self.ops.healthy(),
            streams=[self._stream_view(s) for s in self.config.streams],
            workers=[
                WorkerView(
                    name=p.name,
                    kind=p.kind,
                    capacity=p.capacity,
                    inflight=len(p.inflight),
                    analyzers=list(p.analyzers),
                    last_heard_s=round(now - p.last_heard, 3),
                )
                for p in self.dispatcher.peers.values()
            ],
            queues={
                k: QueueView(self.dispatcher.queued(k), self.dispatcher.inflight(k)) for k in KINDS
            },
            processes=[
                ProcessView(c.name, c.last_pid, c.proc is not None, c.given_up)
                for c in self.children.children.values()
            ],
            cluster=self._cluster_view(),
        )

    def _stream_view(self, s: StreamConfig) -> StreamView:
        kept = self.pipeline.streams.get(s.id)  # None for a moment while reloaded
        link = self.hub.links.get(s.id)
        record = kept.last_record if kept is not None else None
        return StreamView(
            id=s.id,
            mode=s.mode,
            state=link.state if link is not None else "unknown",
            latency_s=record.get("latency_s") if record else None,
            requested_fps=kept.requested_fps if kept is not None else None,
            analyzers_on=sorted(kept.requested_analyzers) if kept is not None else [],
            av_offset=kept.fuser.sync.estimate() if kept is not None else None,
        )

    def _cluster_view(self) -> ClusterView | None:
        """With [cluster]: this shard, the Ready members it sees and who owns which stream
        in its view (every shard computes the same from the same members)."""
        shard = self.shard
        if shard is None:
            return None
        members = sorted(shard.members) if shard.members is not None else None
        return ClusterView(shard.this, members, shard.owners())

    @property
    def results_endpoint(self) -> str:
        """Where fused records, events and statuses are published."""
        return self.publisher.endpoint

    def request_stop(self) -> None:
        """Stop as SIGTERM does (from any thread: the loop notices within a turn)."""
        self.stop_requested = True

    def set_log(self, log_config: LogConfig) -> None:
        """[log] applies now; other sections wait for a restart."""
        logging.getLogger().setLevel(log_config.level.upper())
        self._set_config(self.config.model_copy(update={"log": log_config}))

    def add_stream(self, stream: StreamConfig) -> None:
        """Start a stream: its state, counters at 0, hub link, and its ingest process
        (now, or with the others once the workers are ready)."""
        self._set_config(self.config.model_copy(update={"streams": [*self.config.streams, stream]}))
        self.pipeline.add_stream(stream)
        seed_stream(self.metrics, stream, self.config)
        if self._ingest_started:
            self.add_ingest_child(stream)

    def stop_stream(self, stream_id: str) -> None:
        """Ask a stream to stop: it ends with `stopped` and its last windows go out; one
        not connected yet has nothing to drain and is terminated."""
        child = self.children.children.get(ingest_child(stream_id))
        if child is not None:
            child.restart = False
        if self.hub.connected(stream_id):
            self.hub.stop(stream_id)
        elif child is not None and child.proc is not None:
            child.proc.terminate()

    def stream_drained(self, stream_id: str) -> bool:
        """Its ingest process is gone and its last window is out (or it never connected)."""
        child = self.children.children.get(ingest_child(stream_id))
        if child is not None and child.proc is not None and child.proc.poll() is None:
            return False
        return not self.hub.connected(stream_id) or self.pipeline.stream_complete(stream_id)

    def drop_stream(self, stream_id: str) -> None:
        """Forget a stopped stream everywhere: process, state, hub link, metric series."""
        child = self.children.children.pop(ingest_child(stream_id), None)
        if child is not None and child.proc is not None and child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()
        self.pipeline.remove_stream(stream_id)
        self.metrics.forget_stream(stream_id)
        with contextlib.suppress(KeyError):
            self.metrics.child_restarts.remove(ingest_child(stream_id))
        streams = [s for s in self.config.streams if s.id != stream_id]
        self._set_config(self.config.model_copy(update={"streams": streams}))

    def _set_config(self, config: Config) -> None:
        self.config = self.pipeline.config = config

    # -- shutdown -----------------------------------------------------------------
    def _shutdown(self, poller: zmq.Poller) -> None:
        self.ops.stopping()
        log.info(
            "stopping: sources first, then draining %d queued and %d in-flight items",
            sum(self.dispatcher.queued(k) for k in KINDS),
            self.dispatcher.inflight(),
        )
        self.children.stopping = True  # nothing exits now to be restarted
        self.hub.stop_all()
        self._run_until(poller, INGEST_STOP_GRACE_S, lambda: not self._ingest_alive())
        for child in self.children.alive():
            if child.name.startswith("ingest-") and child.proc is not None:
                child.proc.terminate()
        self._run_until(poller, DRAIN_BUDGET_S, self._drained)
        self.dispatcher.give_up_all("shutdown")  # counted, and fusion stops waiting
        self.pipeline.publish_due(time.monotonic(), flush=True)
        # Local workers get SIGTERM; remote ones are left running: they notice tandemd's
        # silence and register again when it is back.
        self.children.terminate_all()
        self.children.wait_all(WORKER_STOP_GRACE_S)
        for monitor, monitored in self.monitors:
            monitor.close(monitored)
        self.hub.close()
        self.dispatcher.sock.close()
        self.control.close()
        self.publisher.close()
        if self.authenticator is not None:
            self.authenticator.stop()
        self.ops.close()  # the control socket, before the context ends
        if self.shard is not None:
            self.shard.close()
        self.ctx.term()
        log.info("stopped")

    def _ingest_alive(self) -> bool:
        return any(c.name.startswith("ingest-") for c in self.children.alive())

    def _drained(self) -> bool:
        if not self.dispatcher.peers:
            return True  # nobody left to answer
        return all(self.dispatcher.queued(k) == 0 for k in KINDS) and (
            self.dispatcher.inflight() == 0
        )

    def _run_until(self, poller: zmq.Poller, budget_s: float, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + budget_s
        while time.monotonic() < deadline and not done():
            self._turn(poller)


def _shard(config: Config) -> Shard | None:
    membership = membership_for(config.cluster, config.metrics.port)
    return Shard(config, membership) if membership is not None else None
