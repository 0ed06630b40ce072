"""Results of a whole cluster in one place: `tandem proxy` forwards every shard's results
bus to one XPUB endpoint (topics and messages unchanged, subscriptions passed upstream),
so subscribers need not know the shards.

A cluster's shards publish on the same port of their own hosts: `shard_endpoints` turns
a config's [cluster] members into their publish endpoints.
"""

from __future__ import annotations

import logging
import signal
import threading
from urllib.parse import urlsplit

import zmq

from daemon.config import Config

log = logging.getLogger("proxy")


def shard_endpoints(config: Config) -> list[str]:
    """Every member's publish endpoint: the member's host, this config's publish port.
    Static membership only (on Kubernetes, point subscribers at the proxy's Service)."""
    cluster = config.cluster
    if cluster.membership != "static":
        raise ValueError(
            "--shards needs [cluster] membership = 'static' (its peers are the shards)"
        )
    port = urlsplit(config.publish.endpoint).port
    hosts = {m.rsplit(":", 1)[0] for m in [cluster.self_address, *cluster.peers]}
    return [f"tcp://{host}:{port}" for host in sorted(hosts)]


def run_proxy(bind: str, endpoints: list[str], stop: threading.Event | None = None) -> int:
    """Forward until SIGINT/SIGTERM (or `stop`); 0 when stopped."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    upstream = ctx.socket(zmq.XSUB)
    downstream = ctx.socket(zmq.XPUB)
    for sock in (upstream, downstream):
        sock.setsockopt(zmq.LINGER, 0)
    downstream.bind(bind)
    for endpoint in endpoints:
        upstream.connect(endpoint)
    control = ctx.socket(zmq.PAIR)
    control.bind(f"inproc://proxy-control-{id(ctx)}")
    trigger = ctx.socket(zmq.PAIR)
    trigger.connect(f"inproc://proxy-control-{id(ctx)}")
    stopped = stop or threading.Event()
    if stop is None and threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopped.set())
    # The proxy blocks inside libzmq, where Python's signal handlers cannot run: it goes
    # in a thread of its own, and this one waits for the stop and then steers it off.
    forwarder = threading.Thread(
        target=zmq.proxy_steerable, args=(downstream, upstream, None, control), daemon=True
    )
    log.info("forwarding %s to %s", ", ".join(endpoints), bind)
    forwarder.start()
    try:
        while not stopped.wait(0.2):
            pass
        trigger.send(b"TERMINATE")
        forwarder.join(5)
    finally:
        for sock in (upstream, downstream, control, trigger):
            sock.close()
        ctx.term()
    return 0
