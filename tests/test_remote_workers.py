"""Workers on two other hosts (network namespaces with their own addresses) serve one
tandemd over tcp + CURVE."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from daemon.publishing.subscriber import Subscriber
from daemon.wire.security import write_keypair
from tests.conftest import ROOT, free_port, metric, wait_until, worker_argv
from tests.support.netns import make_host, netns_available, remove_host
from tests.test_dispatch_faults import LIVE, next_records

pytestmark = pytest.mark.slow


@pytest.fixture
def hosts():
    reason = netns_available()
    if reason:
        pytest.skip(reason)
    made = []
    try:
        made = [make_host(1), make_host(2)]
        yield made
    finally:
        for host in made:
            remove_host(host)


def test_workers_on_two_hosts_serve_one_tandemd(tandemd, hosts, tmp_path: Path) -> None:
    _, server_secret = write_keypair(tmp_path / "server", "tandemd")
    allowed = tmp_path / "allowed"
    worker_keys = {}
    for host in hosts:
        public, secret = write_keypair(tmp_path / host.namespace, "worker")
        allowed.mkdir(exist_ok=True)
        (allowed / f"{host.namespace}.key").write_bytes(public.read_bytes())
        worker_keys[host.namespace] = secret
    dispatch, pub, port = free_port(), free_port(), free_port()
    daemon = tandemd(f"""
runtime_dir = "{tmp_path}/run"
[log]
digest_s = 0
[[streams]]
{LIVE}
[workers.vision]
count = 0
[workers.audio]
count = 0
[dispatch]
endpoint = "tcp://0.0.0.0:{dispatch}"
curve_secret_key = "{server_secret}"
curve_allowed_keys = "{allowed}"
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = {port}
""")
    server_public = tmp_path / "server" / "tandemd.key"
    procs = []
    try:
        for host, kind in zip(hosts, ("vision", "audio"), strict=True):
            argv = worker_argv(
                kind,
                f"tcp://{host.gateway}:{dispatch}",
                "--server-key",
                str(server_public),
                "--key",
                str(worker_keys[host.namespace]),
            )
            procs.append(subprocess.Popen(host.command(argv), cwd=ROOT))
        assert wait_until(
            lambda: (
                metric(port, "tandem_workers", kind="vision") == 1
                and metric(port, "tandem_workers", kind="audio") == 1
            ),
            60,
        ), daemon.log()
        with Subscriber(f"tcp://127.0.0.1:{pub}", ["fused."]) as sub:
            records = next_records(sub, 4, timeout_s=30)
        complete = [r for r in records if r["missing"] == []]
        assert complete, records
        assert all(r["video"]["results"] > 0 and r["audio"]["results"] > 0 for r in complete)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(15)
