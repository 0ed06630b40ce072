"""tandemd's HTTP endpoint on `[metrics] host:port`, served from a thread of its own:

- `/metrics`: the registry, as prometheus_client serves it (text or OpenMetrics, gzip)
- `/healthz`: 200 while the main loop turns, else 503 saying why (daemon/core/health.py)
- `/readyz`: 200 once bound, workers registered and streams started, else 503 with
  what is missing
- anything else: 404
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from daemon.core.health import Health

StartResponse = Callable[..., Any]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow client never holds up tandemd's exit


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes come every few seconds: no line for each."""


def make_app(registry: CollectorRegistry, health: Health) -> App:
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        if path in ("/healthz", "/readyz"):
            check = health.live if path == "/healthz" else health.ready
            ok, text = check(time.monotonic())
            return _text(start_response, "200 OK" if ok else "503 Service Unavailable", text)
        return _text(
            start_response, "404 Not Found", "not found: try /metrics, /healthz, /readyz\n"
        )

    return app


def _text(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]


def serve(host: str, port: int, registry: CollectorRegistry, health: Health) -> WSGIServer:
    """Listen and serve on a daemon thread; OSError when the port cannot be had."""
    server_class = _Server6 if ":" in host else _Server
    server = make_server(host, port, make_app(registry, health), server_class, _Quiet)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
