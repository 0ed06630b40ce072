"""Membership from Kubernetes: the Ready addresses of a headless Service's EndpointSlices.

Every probe interval, in the Poller's thread (never tandemd's loop), one LIST of the
EndpointSlices labelled `kubernetes.io/service-name=<service>` in the namespace, through
the pod's service account (lightkube). The members are `ip:port` of each Ready endpoint,
`port` being tandemd's metrics port (which serves /healthz), so they match the `self`
every shard names itself by ("${POD_IP}:9310").

An API error (unreachable, forbidden, a timeout, an answer that does not parse) keeps
the last view: a shard that cannot see the API server keeps its streams rather than
dropping them all. Each kind of error is logged once until a list succeeds again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import httpx2
from lightkube import Client, KubeConfig
from lightkube.core.exceptions import ApiError, ConfigError
from lightkube.resources.discovery_v1 import EndpointSlice

from daemon.cluster.membership import Poller

log = logging.getLogger("cluster")

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
SERVICE_LABEL = "kubernetes.io/service-name"
FAMILIES = ("IPv4", "IPv6")


def member(ip: str, port: int) -> str:
    """`ip:port`, an IPv6 address in brackets."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def ready_members(
    slices: Iterable[EndpointSlice], port: int, families: tuple[str, ...] = FAMILIES
) -> frozenset[str]:
    """The Ready endpoints' addresses in slices of `families`. A missing `ready`
    condition means Ready (the API's rule); a terminating endpoint is not Ready (the
    controller says so, unless the Service publishes not-ready addresses); FQDN slices
    carry no IPs and are skipped."""
    out: set[str] = set()
    for endpoint_slice in slices:
        if endpoint_slice.addressType not in families:
            continue
        for endpoint in endpoint_slice.endpoints or []:
            conditions = endpoint.conditions
            if conditions is not None and conditions.ready is False:
                continue
            out.update(member(ip, port) for ip in endpoint.addresses)
    return frozenset(out)


def pod_namespace(account: Path = SERVICE_ACCOUNT) -> str | None:
    """The pod's own namespace, from its service account; None outside a pod."""
    try:
        return (account / "namespace").read_text().strip() or None
    except OSError:
        return None


def error_kind(exc: Exception) -> str:
    """What an error is, coarse enough that a repeat of it is not logged again."""
    if isinstance(exc, ApiError):
        return f"API error {exc.status.code}: {exc.status.reason}"
    if isinstance(exc, httpx2.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx2.TransportError):
        return f"unreachable ({type(exc).__name__})"
    return type(exc).__name__


class KubernetesMembership:
    """The Ready members of `service`'s EndpointSlices in `namespace` (empty: the pod's
    own), as `ip:port` with `port` the metrics port. `family` ("IPv4" or "IPv6"): only
    that address family's slices, the family of the shards' own names (a dual-stack
    Service lists every pod in both; each pod must count once). `kubeconfig`: a
    kubeconfig file to use instead of the pod's service account (tests, or tandemd run
    outside the cluster); `timeout_s` bounds each API call."""

    def __init__(
        self,
        service: str,
        namespace: str,
        port: int,
        interval_s: float,
        *,
        family: str | None = None,
        kubeconfig: Path | None = None,
        account: Path = SERVICE_ACCOUNT,
        timeout_s: float = 5.0,
    ) -> None:
        self.service = service
        self.port = port
        self.families = (family,) if family else FAMILIES
        config = KubeConfig.from_file(kubeconfig) if kubeconfig else _in_cluster(account)
        self.namespace = namespace or pod_namespace(account) or _context_namespace(config)
        self._client = Client(config, namespace=self.namespace, timeout=httpx2.Timeout(timeout_s))
        self._listed = False  # a first list succeeded: until then ready() is None
        self._last: frozenset[str] = frozenset()
        self._errors: set[str] = set()  # kinds logged since the last successful list
        self._poller = Poller(self._round, interval_s, "membership-k8s")

    def ready(self) -> frozenset[str] | None:
        return self._poller.ready() if self._listed else None

    def close(self) -> None:
        self._poller.close()
        self._client.close()

    def _round(self) -> frozenset[str]:
        try:
            slices = self._client.list(
                EndpointSlice, namespace=self.namespace, labels={SERVICE_LABEL: self.service}
            )
            view = ready_members(slices, self.port, self.families)
        except Exception as exc:  # any failure: keep the last view
            self._failed(exc)
            return self._last
        if self._errors:
            log.info("kubernetes API answers again (%s/%s)", self.namespace, self.service)
            self._errors.clear()
        self._last, self._listed = view, True
        return view

    def _failed(self, exc: Exception) -> None:
        kind = error_kind(exc)
        if kind in self._errors:
            return
        self._errors.add(kind)
        state = "keeping the last view" if self._listed else "no members yet"
        log.warning(
            "kubernetes: listing EndpointSlices of %s/%s failed, %s: %s: %s",
            self.namespace,
            self.service,
            state,
            kind,
            exc,
        )


def _in_cluster(account: Path) -> KubeConfig:
    """The pod's service account (token, CA, KUBERNETES_SERVICE_HOST/PORT); outside a pod,
    $KUBECONFIG or ~/.kube/config."""
    try:
        return KubeConfig.from_env(service_account=account)
    except (ConfigError, KeyError) as exc:
        raise ConfigError(f"no service account at {account} and no kubeconfig: {exc}") from exc


def _context_namespace(config: KubeConfig) -> str:
    """The kubeconfig's current context's namespace ("default" when it names none)."""
    current = config.get()
    return current.namespace if current else "default"
