"""The control endpoint: request/reply questions to tandemd over a ZeroMQ ROUTER.

A client (REQ or DEALER) sends one JSON object and gets one JSON object back. A late
subscriber asks which events are active now, since PUB/SUB does not replay:

    request  {"type": "active_events"}                    (optionally "stream": "cam1")
    reply    {"type": "active_events", "events": [<event start messages>], "at": 1795434611.2}
    request  {"type": "recent_events"}                    (optionally "stream": "cam1")
    reply    {"type": "recent_events", "events": [<end messages, oldest first>], "at": ...}

Anything else gets {"type": "error", "error": "..."}; a malformed request is answered
(when it can be), counted and never crashes tandemd. Other parts of tandemd add request
types with `handle(type, function)`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import zmq

log = logging.getLogger("control")
MAX_REQUEST_BYTES = 64 * 1024
Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ControlServer:
    def __init__(self, sock: zmq.Socket[bytes], on_rejected: Callable[[], None]) -> None:
        self.sock = sock  # a bound ROUTER
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._handlers: dict[str, Handler] = {}
        self._on_rejected = on_rejected

    def handle(self, request_type: str, handler: Handler) -> None:
        self._handlers[request_type] = handler

    def handle_incoming(self, budget: int = 100) -> None:
        """Answer up to `budget` waiting requests without blocking."""
        for _ in range(budget):
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) < 2:
                self._on_rejected()
                continue
            envelope, body = frames[:-1], frames[-1]
            reply = self._answer(body)
            try:
                self.sock.send_multipart([*envelope, json.dumps(reply).encode()], zmq.NOBLOCK)
            except zmq.ZMQError as exc:  # the client went away: nothing to answer
                log.debug("control reply not sent: %s", exc)

    def _answer(self, body: bytes) -> dict[str, Any]:
        request: Any = None
        if len(body) <= MAX_REQUEST_BYTES:
            try:
                request = json.loads(body)
            except ValueError:
                request = None
        if not isinstance(request, dict) or not isinstance(request.get("type"), str):
            self._on_rejected()
            return _error("expected a JSON object with a string 'type'")
        handler = self._handlers.get(request["type"])
        if handler is None:
            self._on_rejected()
            known = ", ".join(sorted(self._handlers))
            return _error(f"unknown request type {request['type']!r}; known: {known}")
        try:
            return {"ok": True, "type": request["type"], **handler(request)}
        except ValueError as exc:
            self._on_rejected()
            return _error(str(exc))

    def close(self) -> None:
        self.sock.close(linger=0)


def events_handler(
    request_type: str, events: Callable[[str | None], list[dict[str, Any]]]
) -> Handler:
    """`active_events` or `recent_events`: every stream's, or one stream's."""

    def answer(request: dict[str, Any]) -> dict[str, Any]:
        stream = request.get("stream")
        if stream is not None and not isinstance(stream, str):
            raise ValueError("'stream' must be a string")
        return {"type": request_type, "events": events(stream), "at": time.time()}

    return answer


def _error(message: str) -> dict[str, Any]:
    return {"ok": False, "type": "error", "error": message}


def ask(endpoint: str, request: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
    """One request to a control endpoint; TimeoutError when tandemd does not answer."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send(json.dumps(request).encode())
        if not sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            raise TimeoutError(f"no answer from tandemd at {endpoint} within {timeout_s:g} s")
        reply = json.loads(sock.recv())
    finally:
        sock.close()
    if not isinstance(reply, dict):
        raise ValueError(f"{endpoint}: answer is not a JSON object")
    return reply
