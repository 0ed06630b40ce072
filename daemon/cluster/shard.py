"""This tandemd's share of the config's streams, as the cluster's membership decides.

Every shard reads the same config and computes the same owners from the same Ready
members (daemon/cluster/ownership.py). When the members change, the streams this shard
gains or loses start and stop through the same path as a SIGHUP reload
(daemon/core/reload.py), so nothing else moves. Until its membership has completed a first
round, a shard owns nothing: a shard that has not seen its peers must not start theirs.
"""

from __future__ import annotations

import logging

from daemon.cluster.membership import Membership
from daemon.cluster.ownership import assign
from daemon.config import Config

log = logging.getLogger("cluster")


class Shard:
    def __init__(self, config: Config, membership: Membership) -> None:
        self.full = config  # every stream of the config; this shard runs its own share
        self.this = config.cluster.self_address
        self.membership = membership
        self.members: frozenset[str] | None = None

    def owners(self) -> dict[str, str | None]:
        """stream -> the member that owns it in this shard's view (None: no one yet)."""
        if self.members is None:
            return dict.fromkeys((s.id for s in self.full.streams), None)
        pins = {s.id: s.shard for s in self.full.streams if s.shard}
        return assign(
            (s.id for s in self.full.streams),
            self.members,
            pins,
            self.full.cluster.max_streams_per_shard,
        )

    def owned(self) -> Config:
        """The config with only the streams this shard owns now."""
        owners = self.owners()
        mine = [s for s in self.full.streams if owners.get(s.id) == self.this]
        return self.full.model_copy(update={"streams": mine})

    def set_full(self, config: Config) -> Config:
        """A reloaded config; returns this shard's share of it."""
        self.full = config
        return self.owned()

    def changed(self) -> Config | None:
        """This shard's share when the Ready members changed since the last call."""
        view = self.membership.ready()
        if view is None or view == self.members:
            return None
        self.members = view
        config = self.owned()
        log.info(
            "members %s: this shard (%s) owns %d of %d streams",
            ", ".join(sorted(view)),
            self.this,
            len(config.streams),
            len(self.full.streams),
        )
        return config

    def close(self) -> None:
        self.membership.close()
