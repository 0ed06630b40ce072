"""What tandemd is doing now, as one value: `Tandemd.snapshot()` builds it from its own
state, and readers (`tandem status` on the control socket, `tandem analyze`'s summary)
render it instead of reaching into the service's parts. Plain typed values, taken between
two loop turns, so nothing in them changes under a reader.
"""

from __future__ import annotations

from typing import Any

import msgspec


class StreamView(msgspec.Struct, frozen=True):
    id: str
    mode: str
    state: str  # daemon/wire/vocabulary.py STREAM_STATES, "unknown" while a reload replaces it
    latency_s: float | None  # of its last fused record
    requested_fps: float | None  # the video analysis fps a cascade asked for
    analyzers_on: list[str]  # on-demand analyzers a cascade switched on
    # Fusion's audio-video offset estimate: offset_s, confidence, pairs (None: not yet).
    av_offset: dict[str, Any] | None


class WorkerView(msgspec.Struct, frozen=True):
    name: str
    kind: str
    capacity: int
    inflight: int
    analyzers: list[str]
    last_heard_s: float  # seconds since its last message


class ProcessView(msgspec.Struct, frozen=True):
    name: str
    pid: int | None
    alive: bool
    given_up: bool  # restarted too often: left down


class QueueView(msgspec.Struct, frozen=True):
    queued: int
    inflight: int


class ClusterView(msgspec.Struct, frozen=True):
    self: str
    members: list[str] | None  # Ready members seen; None until membership has looked
    owners: dict[str, str | None]  # stream -> shard


class ServiceSnapshot(msgspec.Struct, frozen=True):
    pid: int
    uptime_s: float
    ready: bool  # its streams were started
    healthy: bool  # its loop turns
    streams: list[StreamView]
    workers: list[WorkerView]
    queues: dict[str, QueueView]  # by worker kind
    processes: list[ProcessView]
    cluster: ClusterView | None
