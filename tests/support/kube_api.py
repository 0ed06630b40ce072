"""A fake Kubernetes API server on loopback (the one thing the tests mock: no cluster runs
here): it answers EndpointSlice lists, or an API error, as the test sets, and records
what it was asked. Clients reach it through a kubeconfig, as they would a real one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

TOKEN = "test-token"


def endpoint(ip: str, ready: bool | None = True, terminating: bool = False) -> dict[str, Any]:
    conditions: dict[str, bool] = {"terminating": terminating}
    if ready is not None:
        conditions["ready"] = ready
    return {"addresses": [ip], "conditions": conditions, "targetRef": {"kind": "Pod"}}


def endpoint_slice(name: str, endpoints: list[dict[str, Any]], family: str = "IPv4") -> Any:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": "tandemd"}},
        "addressType": family,
        "endpoints": endpoints,
        "ports": [{"name": "metrics", "port": 9310, "protocol": "TCP"}],
    }


def slice_list(*slices: Any) -> tuple[int, Any]:
    body = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSliceList",
        "metadata": {"resourceVersion": "1"},
        "items": list(slices),
    }
    return 200, body


def api_status(code: int, reason: str) -> tuple[int, Any]:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": reason}
    return code, body | {"reason": reason, "code": code}


@dataclass
class FakeApi:
    """What the fake API server answers now, and what it was asked."""

    answer: tuple[int, Any] = field(default_factory=slice_list)
    requests: list[tuple[str, dict[str, list[str]], str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def asked(self) -> int:
        with self.lock:
            return len(self.requests)


def handler_for(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            with api.lock:
                api.requests.append((url.path, parse_qs(url.query), self.headers["Authorization"]))
                code, body = api.answer
            if not url.path.startswith("/apis/discovery.k8s.io/v1/namespaces/"):
                code, body = api_status(404, "NotFound")
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def kubeconfig(directory: Path, port: int, namespace: str = "from-context") -> Path:
    """A kubeconfig pointing at the fake on `port`, with a bearer token."""
    path = directory / "kubeconfig"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "shard", "user": {"token": TOKEN}}],
        "contexts": [
            {
                "name": "fake",
                "context": {"cluster": "fake", "user": "shard", "namespace": namespace},
            }
        ],
        "current-context": "fake",
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


@contextmanager
def serving(fake: FakeApi) -> Iterator[ThreadingHTTPServer]:
    """The fake on a free loopback port, until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


def without_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake is on loopback: a proxy from the environment must not carry the calls."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
