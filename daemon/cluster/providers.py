"""Which membership provider a config asks for: `membership_for` builds it (or None: one
tandemd runs every stream). tandemd calls it once at start; the provider runs in a
thread of its own from then on and is closed when tandemd stops."""

from __future__ import annotations

from daemon.cluster.membership import Membership, StaticMembership
from daemon.config import ClusterConfig
from daemon.core.startup import StartupError


def membership_for(cluster: ClusterConfig, metrics_port: int) -> Membership | None:
    """StaticMembership for "static", KubernetesMembership for "kubernetes" (its members
    are `ip:metrics_port` of the Service's Ready endpoints), None for "none"."""
    if cluster.membership == "static":
        return StaticMembership(cluster.self_address, cluster.peers, cluster.probe_interval_s)
    if cluster.membership == "kubernetes":
        return _kubernetes(cluster, metrics_port)
    return None


def _kubernetes(cluster: ClusterConfig, metrics_port: int) -> Membership:
    """Raises StartupError (one line, exit 1) when there is no API to reach: neither the
    pod's service account nor a kubeconfig."""
    # Imported here: lightkube is only needed where a cluster is used.
    from lightkube.core.exceptions import ConfigError

    from daemon.cluster.kubernetes import KubernetesMembership

    try:
        return KubernetesMembership(
            cluster.kubernetes_service,
            cluster.kubernetes_namespace,
            metrics_port,
            cluster.probe_interval_s,
            family=family(cluster.self_address),
        )
    except (ConfigError, OSError, ValueError, KeyError) as exc:
        raise StartupError(f"cluster.membership = 'kubernetes': {exc}") from exc


def family(member: str) -> str:
    """The address family of a member's host: "[fd00::1]:9310" is IPv6."""
    host = member.rsplit(":", 1)[0]
    return "IPv6" if ":" in host else "IPv4"
