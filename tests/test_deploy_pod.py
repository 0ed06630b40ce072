"""The base's pod on loopback: tandemd on the ConfigMap's config (membership =
"kubernetes", no workers of its own) and the vision and audio worker containers' command
lines as processes, over ipc in a shared directory, with the Kubernetes API a fake on
loopback (the one thing mocked) serving the headless Service's EndpointSlice. The shard
owns nothing until its endpoint is Ready, runs every stream once it is the only Ready
member, and stops them when its endpoint leaves (a pod being deleted)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from daemon.publishing.subscriber import Subscriber
from daemon.wire.security import write_keypair
from tests.conftest import ROOT, Daemon, free_port
from tests.support.kube_api import (
    FakeApi,
    endpoint,
    endpoint_slice,
    kubeconfig,
    serving,
    slice_list,
    without_proxies,
)
from tests.support.kustomize import render

pytestmark = pytest.mark.slow
BASE = ROOT / "deploy" / "kubernetes" / "base"
OVERLAY = ROOT / "deploy" / "kubernetes" / "overlays" / "remote-workers"
STREAMS = ("testsrc", "life")  # the ConfigMap's first two
BOUND_S = 60.0  # workers load torch and OpenCV on a loaded 2-core machine


def manifests(directory: Path) -> tuple[str, dict[str, list[str]]]:
    """The ConfigMap's config.toml and each worker container's arguments."""
    rendered = render(directory)
    config = next(m for m in rendered if m["kind"] == "ConfigMap")["data"]["config.toml"]
    shards = next(m for m in rendered if m["kind"] == "StatefulSet")
    containers = shards["spec"]["template"]["spec"]["containers"]
    args = {c["name"]: c["args"] for c in containers if c["name"] in ("vision", "audio")}
    return config, args


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the manifest changed: {old!r}"
    return text.replace(old, new)


def on_loopback(config: str, run: Path, metrics: int, pub: int, streams: int) -> str:
    """The pod's config with loopback ports, a temp directory for the emptyDir, and its
    first `streams` streams."""
    config = replace_once(config, 'runtime_dir = "/run/tandem"', f'runtime_dir = "{run}"')
    config = replace_once(config, '"${POD_IP}:9310"', f'"${{POD_IP}}:{metrics}"')
    config = replace_once(config, 'host = "0.0.0.0"', 'host = "127.0.0.1"')
    config = replace_once(config, "port = 9310", f"port = {metrics}")
    config = replace_once(config, '"tcp://0.0.0.0:7701"', f'"tcp://127.0.0.1:{pub}"')
    after = config.index(f'id = "{STREAMS[streams - 1]}"')
    return config[: config.index("[[streams]]", after)]


def with_secret(text: str, keys: Path, dispatch: int) -> str:
    """The overlay's paths of the Secret tandem-curve's files, and its dispatch port, in
    a temp directory and on loopback."""
    text = text.replace("/etc/tandem-curve-allowed", str(keys / "allowed"))
    text = text.replace("/etc/tandem-curve/", f"{keys}/")
    return text.replace(":7710", f":{dispatch}").replace("tcp://0.0.0.0:", "tcp://127.0.0.1:")


def secret(keys: Path) -> None:
    """What `tandem keys DIR tandemd` and `tandem keys DIR worker` write, mounted as the
    overlay mounts them."""
    write_keypair(keys, "tandemd")
    write_keypair(keys, "worker")
    (keys / "allowed").mkdir()
    shutil.copy(keys / "worker.key", keys / "allowed" / "worker.key")


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeApi, ThreadingHTTPServer]]:
    without_proxies(monkeypatch)
    fake = FakeApi()
    with serving(fake) as server:
        yield fake, server


@dataclass
class Pod:
    daemon: Daemon
    metrics: int
    pub: int


@pytest.fixture
def pod(
    api: tuple[FakeApi, ThreadingHTTPServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Path, int], Pod]]:
    """Factory: the pod of a kustomization, its first n streams; stopped after the test."""
    workers: list[subprocess.Popen[bytes]] = []
    daemons: list[Daemon] = []

    def start(directory: Path, streams: int) -> Pod:
        config_text, worker_args = manifests(directory)
        run, metrics, pub, dispatch = tmp_path / "run", free_port(), free_port(), free_port()
        run.mkdir()
        text = on_loopback(config_text, run, metrics, pub, streams)
        if "curve_secret_key" in text:
            secret(tmp_path / "curve")
            text = with_secret(text, tmp_path / "curve", dispatch)
        config = tmp_path / "config.toml"
        config.write_text(text)
        monkeypatch.setenv("POD_IP", "127.0.0.1")  # the downward API's status.podIP
        port = int(api[1].server_address[1])
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path, port)))
        daemons.append(Daemon(config, tmp_path / "tandemd.log"))
        for kind, args in worker_args.items():
            argv = [a.replace("ipc:///run/tandem/", f"ipc://{run}/") for a in args]
            argv = [with_secret(a, tmp_path / "curve", dispatch) for a in argv]
            with (tmp_path / f"{kind}.log").open("wb") as log:
                command = [sys.executable, "-m", "daemon.cli.tandem", "worker", *argv]
                workers.append(subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log))
        return Pod(daemons[-1], metrics, pub)

    yield start
    for daemon in daemons:
        daemon.kill()
    for proc in workers:
        proc.terminate()
    for proc in workers:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def wait(what: object, bound_s: float, daemon: Daemon) -> float:
    start = time.monotonic()
    while not what():  # type: ignore[operator]
        if time.monotonic() - start > bound_s:
            pytest.fail(f"not within {bound_s} s; tandemd's log:\n{daemon.log()[-4000:]}")
        time.sleep(0.1)
    return time.monotonic() - start


def fused_from(sub: Subscriber, window_s: float) -> set[str]:
    """The streams whose fused records came within `window_s`."""
    seen: set[str] = set()
    deadline = time.monotonic() + window_s
    while (left := deadline - time.monotonic()) > 0:
        for topic, _ in sub.records(timeout_s=min(left, 0.5)):
            seen.add(topic.removeprefix("fused."))
            if time.monotonic() > deadline:
                break
    return seen


def test_the_pod_runs_its_streams_while_its_endpoint_is_ready(
    api: tuple[FakeApi, ThreadingHTTPServer], pod: Callable[[Path, int], Pod]
) -> None:
    fake, _ = api
    # As at a pod's start: its endpoint is listed, not Ready yet.
    fake.answer = slice_list(endpoint_slice("tandemd-x", [endpoint("127.0.0.1", ready=False)]))
    shard = pod(BASE, len(STREAMS))
    with Subscriber(f"tcp://127.0.0.1:{shard.pub}", ["fused."]) as sub:
        # Ready with no member: membership known, this shard owns nothing.
        wait(lambda: readyz(shard.metrics) == 200, BOUND_S, shard.daemon)
        assert fused_from(sub, 1.0) == set()
        # The kubelet saw /readyz pass: the endpoint turns Ready, the shard a member.
        fake.answer = slice_list(endpoint_slice("tandemd-x", [endpoint("127.0.0.1")]))
        took = wait(lambda: fused_from(sub, 1.0) == set(STREAMS), BOUND_S, shard.daemon)
        print(f"both streams published {took:.1f} s after the endpoint turned Ready")
        # The pod is being deleted: its endpoint leaves, and so do its streams.
        fake.answer = slice_list(
            endpoint_slice("tandemd-x", [endpoint("127.0.0.1", False, terminating=True)])
        )
        took = wait(lambda: fused_from(sub, 2.0) == set(), 20.0, shard.daemon)
        print(f"2 s without records ended {took:.1f} s after the endpoint left")
    assert shard.daemon.stop(20) == 0, shard.daemon.log()[-4000:]


def test_the_remote_workers_pod_connects_its_workers_with_curve(
    api: tuple[FakeApi, ThreadingHTTPServer], pod: Callable[[Path, int], Pod]
) -> None:
    """The overlay's pod: dispatch on tcp with CURVE, the keys where the Secret's
    volumes put them: both worker containers get in (a stream's records have video and
    audio results)."""
    fake, _ = api
    fake.answer = slice_list(endpoint_slice("tandemd-x", [endpoint("127.0.0.1")]))
    shard = pod(OVERLAY, 1)
    with Subscriber(f"tcp://127.0.0.1:{shard.pub}", ["fused."]) as sub:
        wait(lambda: any(complete(r) for _, r in sub.records(timeout_s=1.0)), BOUND_S, shard.daemon)
    assert shard.daemon.stop(20) == 0, shard.daemon.log()[-4000:]


def complete(record: dict[str, Any]) -> bool:
    """A fused record with results from both a vision and an audio worker."""
    return bool(record["video"]["results"] and record["audio"]["results"])
