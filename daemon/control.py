"""tandemd's local control socket: a small request/reply protocol over ZeroMQ ipc.

A client (REQ, or DEALER with an empty delimiter) sends one JSON object with a `type`;
tandemd answers one JSON object: `{"ok": true, "type": ..., ...}` or `{"ok": false,
"error": "..."}`. Request types are registered with `ControlServer.register`, so other
parts of tandemd add their own (e.g. fusion's active events) next to `status`.
The socket is polled from tandemd's main loop without blocking; it only reads state.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zmq

from daemon.dispatch.dispatcher import KINDS
from daemon.logs import RATE_LIMITED

if TYPE_CHECKING:
    from daemon.service import Tandemd

log = logging.getLogger("control")
Handler = Callable[[dict[str, Any]], dict[str, Any]]
MAX_REQUEST_BYTES = 64 * 1024
RATE_WINDOW_S = 10.0  # rates in `status` are averages over about this long


class ControlServer:
    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> None:
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
        self.sock.bind(endpoint)
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.handlers: dict[str, Handler] = {}

    def register(self, request_type: str, handler: Handler) -> None:
        self.handlers[request_type] = handler

    def handle_incoming(self) -> None:
        while self.sock.poll(0, zmq.POLLIN):
            frames = self.sock.recv_multipart()
            if len(frames) < 2:
                continue
            envelope, body = frames[:-1], frames[-1]
            reply = self._answer(body)
            try:
                self.sock.send_multipart([*envelope, json.dumps(reply).encode()], zmq.NOBLOCK)
            except zmq.ZMQError as exc:
                log.warning("control reply not sent: %s", exc, extra=RATE_LIMITED)

    def _answer(self, body: bytes) -> dict[str, Any]:
        try:
            request = json.loads(body)
            kind = request["type"]
        except (ValueError, TypeError, KeyError):
            return {"ok": False, "error": 'a request is a JSON object with a "type"'}
        handler = self.handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            known = ", ".join(sorted(self.handlers))
            return {"ok": False, "error": f"unknown request type {kind!r}; known: {known}"}
        try:
            return {"ok": True, "type": kind, **handler(request)}
        except Exception as exc:  # a bug in one handler must not take tandemd down
            log.exception("control request %r failed", kind)
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def close(self) -> None:
        self.sock.close()


class Rates:
    """Per-stream rates of counters in tandemd's registry, sampled about once a second."""

    def __init__(self, service: Tandemd) -> None:
        self.service = service
        self.samples: deque[tuple[float, dict[str, dict[str, float]]]] = deque()

    def tick(self, now: float) -> None:
        if self.samples and now - self.samples[-1][0] < 1.0:
            return
        self.samples.append((now, self._counts()))
        while len(self.samples) > 2 and now - self.samples[1][0] > RATE_WINDOW_S:
            self.samples.popleft()

    def per_second(self, stream: str) -> dict[str, float]:
        if len(self.samples) < 2:
            return {}
        (t0, first), (t1, last) = self.samples[0], self.samples[-1]
        before, after = first.get(stream, {}), last.get(stream, {})
        return {k: round((v - before.get(k, 0.0)) / (t1 - t0), 3) for k, v in after.items()}

    def _counts(self) -> dict[str, dict[str, float]]:
        """One pass over the registry (not one per series: that would cost the loop)."""
        out: dict[str, dict[str, float]] = {s.id: {} for s in self.service.config.streams}
        for name, labels, value in _samples(self.service, COUNTED):
            key = "records" if name == "tandem_fused_records_total" else f"{labels['modality']}_in"
            if labels["stream"] in out:
                out[labels["stream"]][key] = value
        return out


COUNTED = {"tandem_items_received_total", "tandem_fused_records_total"}


def _samples(service: Tandemd, names: set[str]) -> list[tuple[str, dict[str, str], float]]:
    return [
        (sample.name, sample.labels, sample.value)
        for family in service.metrics.registry.collect()
        for sample in family.samples
        if sample.name in names
    ]


def status(service: Tandemd, rates: Rates) -> dict[str, Any]:
    """What `tandem status` shows: streams, workers, queues, local processes, rates."""
    now = time.monotonic()
    states = {
        labels["stream"]: labels["state"]
        for _, labels, value in _samples(service, {"tandem_stream_state"})
        if value == 1
    }
    streams = []
    for s in service.config.streams:
        state = states.get(s.id, "unknown")
        record = service.pipeline.last_record.get(s.id)
        streams.append(
            {
                "id": s.id,
                "mode": s.mode,
                "state": state,
                "rates": rates.per_second(s.id),
                "latency_s": record.get("latency_s") if record else None,
            }
        )
    workers = [
        {
            "name": p.name,
            "kind": p.kind,
            "capacity": p.capacity,
            "inflight": len(p.inflight),
            "analyzers": p.analyzers,
            "last_heard_s": round(now - p.last_heard, 3),
        }
        for p in service.dispatcher.peers.values()
    ]
    processes = [
        {"name": c.name, "pid": c.last_pid, "alive": c.proc is not None, "given_up": c.given_up}
        for c in service.children.children.values()
    ]
    queues = {
        k: {"queued": service.dispatcher.queued(k), "inflight": service.dispatcher.inflight(k)}
        for k in KINDS
    }
    return {
        "pid": os.getpid(),
        "uptime_s": round(now - service.started_at, 3),
        "ready": service.ingest_started,
        "healthy": service.ops.healthy(),
        "streams": streams,
        "workers": workers,
        "queues": queues,
        "processes": processes,
    }


def request(endpoint: str, body: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
    """One request to tandemd's control socket; raises TimeoutError when no answer."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        with ctx.socket(zmq.REQ) as sock:
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
            sock.send(json.dumps(body).encode())
            if not sock.poll(int(timeout_s * 1000), zmq.POLLIN):
                raise TimeoutError(f"no answer from tandemd at {endpoint} in {timeout_s:g} s")
            reply: dict[str, Any] = json.loads(sock.recv())
            return reply
    finally:
        ctx.term()


def control_endpoint(runtime_dir: str, endpoint: str) -> str:
    """The configured endpoint, else an ipc socket in the runtime directory."""
    return endpoint or f"ipc://{runtime_dir}/control.sock"


def start_control(service: Tandemd) -> tuple[ControlServer, Rates] | None:
    """Bind the control socket with its `status` request; None when disabled."""
    cfg = service.config.control
    if not cfg.enabled:
        return None
    endpoint = control_endpoint(str(service.runtime_dir), cfg.endpoint)
    try:
        server = ControlServer(service.ctx, endpoint)
    except zmq.ZMQError as exc:
        from daemon.service import StartupError

        raise StartupError(f"control.endpoint = {endpoint!r}: cannot bind: {exc}") from exc
    rates = Rates(service)
    server.register("status", lambda _request: status(service, rates))
    log.info("control on %s", server.endpoint)
    return server, rates
