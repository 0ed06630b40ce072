"""The base's pod on loopback: tandemd on the ConfigMap's config (membership =
"kubernetes", no workers of its own) and the vision and audio worker containers' command
lines as processes, over ipc in a shared directory, with the Kubernetes API a fake on
loopback (the one thing mocked) serving the headless Service's EndpointSlice. The shard
owns nothing until its endpoint is Ready, runs every stream once it is the only Ready
member, and stops them when its endpoint leaves (a pod being deleted)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from daemon.publishing.subscriber import Subscriber
from tests.conftest import ROOT, Daemon, free_port
from tests.kustomize import render
from tests.test_cluster_kubernetes import (
    FakeApi,
    api,
    endpoint,
    endpoint_slice,
    kubeconfig,
    slice_list,
)

pytestmark = pytest.mark.slow
__all__ = ["api"]  # the fake API server fixture
BASE = ROOT / "deploy" / "kubernetes" / "base"
STREAMS = ("testsrc", "life")  # the ConfigMap's first two
BOUND_S = 60.0  # workers load torch and OpenCV on a loaded 2-core machine


def manifests() -> tuple[str, dict[str, list[str]]]:
    """The ConfigMap's config.toml and each worker container's arguments."""
    rendered = render(BASE)
    config = next(m for m in rendered if m["kind"] == "ConfigMap")["data"]["config.toml"]
    shards = next(m for m in rendered if m["kind"] == "StatefulSet")
    containers = shards["spec"]["template"]["spec"]["containers"]
    args = {c["name"]: c["args"] for c in containers if c["name"] in ("vision", "audio")}
    return config, args


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the manifest changed: {old!r}"
    return text.replace(old, new)


def on_loopback(config: str, run: Path, metrics: int, pub: int) -> str:
    """The pod's config with loopback ports and a temp directory for the emptyDir."""
    config = replace_once(config, 'runtime_dir = "/run/tandem"', f'runtime_dir = "{run}"')
    config = replace_once(config, '"${POD_IP}:9310"', f'"${{POD_IP}}:{metrics}"')
    config = replace_once(config, 'host = "0.0.0.0"', 'host = "127.0.0.1"')
    config = replace_once(config, "port = 9310", f"port = {metrics}")
    config = replace_once(config, '"tcp://0.0.0.0:7701"', f'"tcp://127.0.0.1:{pub}"')
    third = config.index("[[streams]]", config.index(f'id = "{STREAMS[1]}"'))
    return config[:third]


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


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_pod_runs_its_streams_while_its_endpoint_is_ready(
    api: tuple[FakeApi, ThreadingHTTPServer],
    workers: list[subprocess.Popen[bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, server = api
    config_text, worker_args = manifests()
    run, metrics, pub = tmp_path / "run", free_port(), free_port()
    run.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(on_loopback(config_text, run, metrics, pub))
    # As at a pod's start: its endpoint is listed, not Ready yet.
    fake.answer = slice_list(endpoint_slice("tandemd-x", [endpoint("127.0.0.1", ready=False)]))
    monkeypatch.setenv("POD_IP", "127.0.0.1")  # the downward API's status.podIP
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path, int(server.server_address[1]))))
    daemon = Daemon(config, tmp_path / "tandemd.log")
    try:
        for kind, args in worker_args.items():
            argv = [a.replace("ipc:///run/tandem/", f"ipc://{run}/") for a in args]
            with (tmp_path / f"{kind}.log").open("wb") as log:
                command = [sys.executable, "-m", "daemon.cli", "worker", *argv]
                workers.append(subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log))
        with Subscriber(f"tcp://127.0.0.1:{pub}", ["fused."]) as sub:
            # Ready with no member: membership known, this shard owns nothing.
            wait(lambda: readyz(metrics) == 200, BOUND_S, daemon)
            assert fused_from(sub, 2.0) == set()
            # The kubelet saw /readyz pass: the endpoint turns Ready, the shard a member.
            fake.answer = slice_list(endpoint_slice("tandemd-x", [endpoint("127.0.0.1")]))
            took = wait(lambda: fused_from(sub, 1.0) == set(STREAMS), BOUND_S, daemon)
            print(f"both streams published {took:.1f} s after the endpoint turned Ready")
            # The pod is being deleted: its endpoint leaves, and so do its streams.
            fake.answer = slice_list(
                endpoint_slice("tandemd-x", [endpoint("127.0.0.1", False, terminating=True)])
            )
            took = wait(lambda: fused_from(sub, 3.0) == set(), 20.0, daemon)
            print(f"a 3 s without records ended {took:.1f} s after the endpoint left")
        assert daemon.stop(20) == 0, daemon.log()[-4000:]
    finally:
        daemon.kill()
