"""SIGHUP: reload config.toml without a restart.

Streams added, removed or changed start or stop without touching the other streams or
the workers. A removed stream's ingest process is asked to stop, its last windows are
published, then its state and metric series are dropped; a changed stream is removed
and then added again. Other sections (workers, dispatch, fusion, publish, metrics,
control, runtime_dir) take effect only at the next restart: each changed one is logged. An
invalid new config is rejected with one log line, and the running one keeps going.

The reloader computes the diff and keeps which streams are stopping; it acts on tandemd
only through its stream surface (add_stream, stop_stream, stream_drained, drop_stream,
set_log in daemon/core/service.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from daemon.config import Config, ConfigError, StreamConfig, load_config

if TYPE_CHECKING:
    from daemon.cluster.shard import Shard
    from daemon.core.service import Tandemd

log = logging.getLogger("reload")
REMOVE_GRACE_S = 3.0  # a removed stream's last windows are published within this
RESTART_SECTIONS = (
    "runtime_dir",
    "workers",
    "dispatch",
    "fusion",
    "publish",
    "metrics",
    "control",
)


@dataclass(frozen=True)
class StreamDiff:
    added: list[StreamConfig]
    removed: list[str]
    changed: list[StreamConfig]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff_streams(old: Config, new: Config) -> StreamDiff:
    before = {s.id: s for s in old.streams}
    after = {s.id: s for s in new.streams}
    return StreamDiff(
        added=[s for i, s in after.items() if i not in before],
        removed=[i for i in before if i not in after],
        changed=[s for i, s in after.items() if i in before and before[i] != s],
    )


def restart_only_changes(old: Config, new: Config) -> list[str]:
    return [name for name in RESTART_SECTIONS if getattr(old, name) != getattr(new, name)]


@dataclass
class Reloader:
    """Acts on SIGHUP from tandemd's main loop (the handler only sets `requested`)."""

    service: Tandemd
    path: str | None  # None: no file to reload (membership changes still apply)
    shard: Shard | None = None  # with [cluster]: only this shard's streams run
    requested: bool = False
    removing: dict[str, float] = field(default_factory=dict)  # stream -> deadline
    pending: dict[str, StreamConfig] = field(default_factory=dict)  # add once removed

    @property
    def busy(self) -> bool:
        """Streams of the last reload still stopping or waiting to start."""
        return bool(self.removing or self.pending)

    def tick(self, now: float) -> None:
        for stream, deadline in list(self.removing.items()):
            if self.service.stream_drained(stream) or now > deadline:
                self.service.drop_stream(stream)
                del self.removing[stream]
                log.info("stream %s removed", stream)
                if stream in self.pending:
                    self._add(self.pending.pop(stream))

    def reload(self) -> str | None:
        """Read the file and apply it; the error when it is refused."""
        if self.path is None:
            return "tandemd was started without a config file: nothing to reload"
        try:
            new = load_config(self.path)
        except ConfigError as exc:
            errors = "; ".join(str(exc).splitlines())  # every error, on the event's one line
            log.error("reload rejected, running config kept: %s", errors)
            return errors
        old = self.service.config
        if self.shard is not None:
            new = self.shard.set_full(new)  # this shard's share of the new streams
        for section in restart_only_changes(old, new):
            log.warning("reload: [%s] changed; it takes effect at the next restart", section)
        if old.log.format != new.log.format:
            log.warning("reload: [log] format changed; it takes effect at the next restart")
        # Streams change one by one as they start and stop; [log] applies now; the other
        # sections stay as they are running.
        self.service.set_log(new.log)
        self.apply(new, f"reloaded {self.path}")
        return None

    def apply(self, target: Config, why: str) -> None:
        """Start, stop and restart streams so that `target`'s streams run: a reloaded
        config, or this shard's share after the cluster's members changed."""
        diff = diff_streams(self._target(), target)
        self._apply(diff)
        log.info(
            "%s: %d streams added, %d removed, %d changed",
            why,
            len(diff.added),
            len(diff.removed),
            len(diff.changed),
        )

    def _target(self) -> Config:
        """The streams as they will be once removals in progress finish: a reload during
        one diffs against this, not against what still runs."""
        config = self.service.config
        streams = [s for s in config.streams if s.id not in self.removing]
        return config.model_copy(update={"streams": [*streams, *self.pending.values()]})

    def _apply(self, diff: StreamDiff) -> None:
        for stream_id in diff.removed:
            if self.pending.pop(stream_id, None) is None:
                self._remove(stream_id)
        for stream in diff.changed:
            if stream.id not in self.removing:
                self._remove(stream.id)
            self.pending[stream.id] = stream
        for stream in diff.added:
            if stream.id in self.removing:  # still stopping: it starts once removed
                self.pending[stream.id] = stream
            else:
                self._add(stream)

    def _remove(self, stream_id: str) -> None:
        self.service.stop_stream(stream_id)
        self.removing[stream_id] = time.monotonic() + REMOVE_GRACE_S

    def _add(self, stream: StreamConfig) -> None:
        self.service.add_stream(stream)
        log.info("stream %s added", stream.id)
