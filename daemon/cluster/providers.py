"""Which membership provider a config asks for: `membership_for` builds it (or None: one
tandemd runs every stream). tandemd calls it once at start; the provider runs in a
thread of its own from then on and is closed when tandemd stops."""

from __future__ import annotations

from daemon.cluster.membership import Membership, StaticMembership
from daemon.config import ClusterConfig


def membership_for(cluster: ClusterConfig, metrics_port: int) -> Membership | None:
    """StaticMembership for "static", KubernetesMembership for "kubernetes" (its members
    are `ip:metrics_port` of the Service's Ready endpoints), None for "none"."""
    if cluster.membership == "static":
        return StaticMembership(cluster.self_address, cluster.peers, cluster.probe_interval_s)
    if cluster.membership == "kubernetes":
        # Imported here: lightkube is only needed where a cluster is used.
        from daemon.cluster.kubernetes import KubernetesMembership

        return KubernetesMembership(
            cluster.kubernetes_service,
            cluster.kubernetes_namespace,
            metrics_port,
            cluster.probe_interval_s,
        )
    return None
