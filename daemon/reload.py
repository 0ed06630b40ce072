"""SIGHUP: reload config.toml without a restart.

Streams added, removed or changed start or stop without touching the other streams or
the workers. A removed stream's ingest process is asked to stop, its last windows are
published, then its state and metric series are dropped; a changed stream is removed
and then added again. Other sections (workers, dispatch, fusion, publish, metrics,
control, runtime_dir) take effect only at the next restart: each changed one is logged. An
invalid new config is rejected with one log line, and the running one keeps going.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from daemon.config import Config, ConfigError, StreamConfig, load_config
from daemon.metrics import Metrics
from daemon.metrics_seed import ingest_child, seed_stream

if TYPE_CHECKING:
    from daemon.service import Tandemd

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


def forget_stream_series(metrics: Metrics, stream: str) -> None:
    """Remove every labelled series of `stream`, so a removed stream is not `down`,
    and its ingest process's restart count."""
    with contextlib.suppress(KeyError):
        metrics.child_restarts.remove(ingest_child(stream))
    metrics.forget_stream(stream)


@dataclass
class Reloader:
    """Acts on SIGHUP from tandemd's main loop (the handler only sets `requested`)."""

    service: Tandemd
    path: str
    requested: bool = False
    removing: dict[str, float] = field(default_factory=dict)  # stream -> deadline
    pending: dict[str, StreamConfig] = field(default_factory=dict)  # add once removed

    @property
    def busy(self) -> bool:
        """Streams of the last reload still stopping or waiting to start."""
        return bool(self.removing or self.pending)

    def tick(self, now: float) -> None:
        for stream, deadline in list(self.removing.items()):
            if self._stream_drained(stream) or now > deadline:
                self._drop_stream(stream)
                del self.removing[stream]
                forget_stream_series(self.service.metrics, stream)
                log.info("stream %s removed", stream)
                if stream in self.pending:
                    self._add(self.pending.pop(stream))

    def reload(self) -> str | None:
        """Read the file and apply it; the error when it is refused."""
        try:
            new = load_config(self.path)
        except ConfigError as exc:
            errors = "; ".join(str(exc).splitlines())  # every error, on the event's one line
            log.error("reload rejected, running config kept: %s", errors)
            return errors
        old = self.service.config
        diff = diff_streams(self._target(), new)
        for section in restart_only_changes(old, new):
            log.warning("reload: [%s] changed; it takes effect at the next restart", section)
        if old.log.format != new.log.format:
            log.warning("reload: [log] format changed; it takes effect at the next restart")
        if old.log.level != new.log.level:
            logging.getLogger().setLevel(new.log.level.upper())
        # Streams change one by one as they start and stop; [log] applies now; the other
        # sections stay as they are running.
        self.service.set_config(old.model_copy(update={"log": new.log}))
        self._apply(diff)
        log.info(
            "reloaded %s: %d streams added, %d removed, %d changed",
            self.path,
            len(diff.added),
            len(diff.removed),
            len(diff.changed),
        )
        return None

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
        self._stop_stream(stream_id)
        self.removing[stream_id] = time.monotonic() + REMOVE_GRACE_S

    def _add(self, stream: StreamConfig) -> None:
        self._start_stream(stream)
        log.info("stream %s added", stream.id)

    # -- acting on tandemd --------------------------------------------------------
    def _start_stream(self, stream: StreamConfig) -> None:
        self.service.set_config(
            self.service.config.model_copy(
                update={"streams": [*self.service.config.streams, stream]}
            )
        )
        self.service.pipeline.add_stream(stream)
        seed_stream(self.service.metrics, stream, self.service.config)  # counters at 0
        self.service.hub.add_stream(stream.id, stream.queue)
        if self.service.ingest_started:  # else it starts with the others once workers are ready
            self.service.add_ingest_child(stream)

    def _stop_stream(self, stream_id: str) -> None:
        child = self.service.children.children.get(f"ingest-{stream_id}")
        if child is not None:
            child.restart = False
        if self._connected(stream_id):
            self.service.hub.stop(stream_id)  # it ends with `stopped`, last windows out
        elif child is not None and child.proc is not None:
            child.proc.terminate()  # not connected yet: nothing of it to drain

    def _connected(self, stream_id: str) -> bool:
        link = self.service.hub.links.get(stream_id)
        return link is not None and link.identity is not None

    def _stream_drained(self, stream_id: str) -> bool:
        child = self.service.children.children.get(f"ingest-{stream_id}")
        alive = child is not None and child.proc is not None and child.proc.poll() is None
        if alive:
            return False
        return not self._connected(stream_id) or self.service.pipeline.stream_complete(stream_id)

    def _drop_stream(self, stream_id: str) -> None:
        child = self.service.children.children.pop(f"ingest-{stream_id}", None)
        if child is not None and child.proc is not None and child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()
        self.service.pipeline.remove_stream(stream_id)
        self.service.hub.links.pop(stream_id, None)
        streams = [s for s in self.service.config.streams if s.id != stream_id]
        self.service.set_config(self.service.config.model_copy(update={"streams": streams}))
