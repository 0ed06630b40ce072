"""The Kubernetes membership provider against a fake API server on loopback (the one
thing mocked: no cluster runs here). The fake serves EndpointSlice lists as the API
server does; the provider reaches it through lightkube, configured by a kubeconfig file
the test writes, exactly as it would reach a real one."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from daemon.cluster.kubernetes import SERVICE_ACCOUNT, KubernetesMembership
from daemon.cluster.membership import StaticMembership
from daemon.cluster.providers import membership_for
from daemon.config import ClusterConfig
from daemon.core.startup import StartupError
from tests.support.kube_api import (
    TOKEN,
    FakeApi,
    api_status,
    endpoint,
    endpoint_slice,
    kubeconfig,
    serving,
    slice_list,
    without_proxies,
)

INTERVAL_S = 0.1
BOUND_S = 10.0  # "within a few probe intervals", with room for a loaded 2-core machine


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeApi, ThreadingHTTPServer]]:
    without_proxies(monkeypatch)
    fake = FakeApi()
    with serving(fake) as server:
        yield fake, server


@pytest.fixture
def provider(
    api: tuple[FakeApi, ThreadingHTTPServer], tmp_path: Path
) -> Iterator[Callable[..., KubernetesMembership]]:
    made: list[KubernetesMembership] = []

    def make(
        namespace: str = "video", account: Path | None = None, family: str | None = None
    ) -> KubernetesMembership:
        port = api[1].server_address[1]
        membership = KubernetesMembership(
            "tandemd",
            namespace,
            9310,
            INTERVAL_S,
            family=family,
            kubeconfig=kubeconfig(tmp_path, int(port)),
            account=account or tmp_path / "no-account",
            timeout_s=2.0,
        )
        made.append(membership)
        return membership

    yield make
    for membership in made:
        membership.close()


def wait_for(what: Callable[[], bool], bound_s: float = BOUND_S) -> float:
    start = time.monotonic()
    while not what():
        assert time.monotonic() - start < bound_s, "not within the bound"
        time.sleep(0.02)
    return time.monotonic() - start


def test_ready_members_appear_and_not_ready_ones_do_not(
    api: tuple[FakeApi, ThreadingHTTPServer], provider: Callable[..., KubernetesMembership]
) -> None:
    fake, _ = api
    fake.answer = slice_list(
        endpoint_slice(
            "tandemd-abc",
            [
                endpoint("10.0.0.1"),
                endpoint("10.0.0.2", ready=False),  # readiness probe failing
                endpoint("10.0.0.3", ready=None),  # no condition: Ready, as the API says
                endpoint("10.0.0.4", ready=False, terminating=True),  # going away
            ],
        ),
        endpoint_slice("tandemd-def", [endpoint("10.0.1.1")]),
        endpoint_slice("tandemd-v6", [endpoint("fd00::7")], family="IPv6"),
        endpoint_slice("tandemd-fqdn", [endpoint("tandemd-9.example")], family="FQDN"),
    )
    membership = provider()
    wait_for(lambda: membership.ready() is not None)
    assert membership.ready() == {
        "10.0.0.1:9310",
        "10.0.0.3:9310",
        "10.0.1.1:9310",
        "[fd00::7]:9310",
    }
    path, query, auth = fake.requests[0]
    assert path == "/apis/discovery.k8s.io/v1/namespaces/video/endpointslices"
    assert query["labelSelector"] == ["kubernetes.io/service-name=tandemd"]
    assert auth == f"Bearer {TOKEN}"


def test_a_dual_stack_service_counts_each_pod_once(
    api: tuple[FakeApi, ThreadingHTTPServer], provider: Callable[..., KubernetesMembership]
) -> None:
    """Both families list every pod; the shards name themselves in one of them."""
    fake, _ = api
    fake.answer = slice_list(
        endpoint_slice("v4", [endpoint("10.0.0.1"), endpoint("10.0.0.2")]),
        endpoint_slice("v6", [endpoint("fd00::1"), endpoint("fd00::2")], family="IPv6"),
    )
    v4, v6 = provider(family="IPv4"), provider(family="IPv6")
    wait_for(lambda: v4.ready() is not None and v6.ready() is not None)
    assert v4.ready() == {"10.0.0.1:9310", "10.0.0.2:9310"}
    assert v6.ready() == {"[fd00::1]:9310", "[fd00::2]:9310"}


def test_a_slice_update_changes_the_view_within_a_few_intervals(
    api: tuple[FakeApi, ThreadingHTTPServer], provider: Callable[..., KubernetesMembership]
) -> None:
    fake, _ = api
    fake.answer = slice_list(endpoint_slice("a", [endpoint("10.0.0.1"), endpoint("10.0.0.2")]))
    membership = provider()
    wait_for(lambda: membership.ready() == {"10.0.0.1:9310", "10.0.0.2:9310"})
    # A pod turns not Ready (its /readyz fails) and a new one joins.
    fake.answer = slice_list(
        endpoint_slice("a", [endpoint("10.0.0.1"), endpoint("10.0.0.2", ready=False)]),
        endpoint_slice("b", [endpoint("10.0.0.9")]),
    )
    took = wait_for(lambda: membership.ready() == {"10.0.0.1:9310", "10.0.0.9:9310"})
    print(f"view changed {took:.2f} s after the slices did (probe interval {INTERVAL_S} s)")
    fake.answer = slice_list()  # the Service has no endpoints left
    wait_for(lambda: membership.ready() == frozenset())


def test_an_api_error_keeps_the_last_view_and_is_logged_once(
    api: tuple[FakeApi, ThreadingHTTPServer],
    provider: Callable[..., KubernetesMembership],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, _ = api
    fake.answer = slice_list(endpoint_slice("a", [endpoint("10.0.0.1"), endpoint("10.0.0.2")]))
    membership = provider()
    wait_for(lambda: membership.ready() is not None)
    view = membership.ready()
    with caplog.at_level(logging.WARNING, logger="cluster"):
        fake.answer = api_status(403, "Forbidden")  # e.g. the Role lost its rule
        asked = fake.asked()
        wait_for(lambda: fake.asked() >= asked + 5)  # five failed rounds at least
        assert membership.ready() == view
        fake.answer = api_status(500, "InternalError")
        asked = fake.asked()
        wait_for(lambda: fake.asked() >= asked + 5)
        assert membership.ready() == view
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 2, failures  # once per kind, not once per round
    assert "403" in failures[0] and "keeping the last view" in failures[0]
    assert "500" in failures[1]
    # The API answers again: the view follows it.
    fake.answer = slice_list(endpoint_slice("a", [endpoint("10.0.0.2")]))
    wait_for(lambda: membership.ready() == {"10.0.0.2:9310"})


def test_an_unreachable_api_server_keeps_the_last_view(
    api: tuple[FakeApi, ThreadingHTTPServer], provider: Callable[..., KubernetesMembership]
) -> None:
    fake, server = api
    fake.answer = slice_list(endpoint_slice("a", [endpoint("10.0.0.1")]))
    membership = provider()
    wait_for(lambda: membership.ready() is not None)
    server.shutdown()
    server.server_close()  # connections refused from now on
    time.sleep(10 * INTERVAL_S)
    assert membership.ready() == {"10.0.0.1:9310"}


def test_no_view_before_a_first_list_succeeds(
    api: tuple[FakeApi, ThreadingHTTPServer], provider: Callable[..., KubernetesMembership]
) -> None:
    """A shard that has not seen its peers owns nothing, rather than everything."""
    fake, _ = api
    fake.answer = api_status(403, "Forbidden")
    membership = provider()
    wait_for(lambda: fake.asked() >= 3)
    assert membership.ready() is None
    fake.answer = slice_list(endpoint_slice("a", [endpoint("10.0.0.1")]))
    wait_for(lambda: membership.ready() == {"10.0.0.1:9310"})


def test_an_empty_namespace_is_the_pods_own(
    api: tuple[FakeApi, ThreadingHTTPServer],
    provider: Callable[..., KubernetesMembership],
    tmp_path: Path,
) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "namespace").write_text("cameras")
    fake, _ = api
    membership = provider(namespace="", account=account)
    wait_for(lambda: membership.ready() is not None)
    assert membership.namespace == "cameras"
    assert fake.requests[0][0] == "/apis/discovery.k8s.io/v1/namespaces/cameras/endpointslices"


def test_membership_for_picks_the_provider(tmp_path: Path) -> None:
    assert membership_for(ClusterConfig(), 9310) is None
    static = membership_for(
        ClusterConfig(membership="static", self_address="127.0.0.1:1", peers=["127.0.0.1:2"]),
        9310,
    )
    assert isinstance(static, StaticMembership)
    assert static.peers == ["127.0.0.1:2"]
    static.close()


@pytest.mark.skipif(SERVICE_ACCOUNT.exists(), reason="inside a pod: would list the real API")
def test_membership_for_kubernetes(
    api: tuple[FakeApi, ThreadingHTTPServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a pod the provider falls back to $KUBECONFIG, as kubectl does."""
    fake, server = api
    fake.answer = slice_list(endpoint_slice("a", [endpoint("10.0.0.5")]))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path, int(server.server_address[1]))))
    config = ClusterConfig(
        membership="kubernetes", self_address="10.0.0.5:9400", probe_interval_s=INTERVAL_S
    )
    membership = membership_for(config, 9400)
    assert isinstance(membership, KubernetesMembership)
    try:
        wait_for(lambda: membership.ready() == {"10.0.0.5:9400"})
        assert membership.namespace == "from-context" and membership.families == ("IPv4",)
        assert fake.requests[0][0].endswith("/namespaces/from-context/endpointslices")
    finally:
        membership.close()


@pytest.mark.skipif(SERVICE_ACCOUNT.exists(), reason="inside a pod: the service account is there")
def test_no_api_to_reach_is_a_startup_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither the pod's service account nor a kubeconfig: tandemd says so in one line
    (exit 1), not a traceback."""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    config = ClusterConfig(membership="kubernetes", self_address="10.0.0.5:9310")
    with pytest.raises(StartupError, match=r"cluster\.membership = 'kubernetes': .*missing"):
        membership_for(config, 9310)
