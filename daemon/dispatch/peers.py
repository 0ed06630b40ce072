"""What tandemd knows of each registered worker and each item it holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from daemon.wire.protocol import AudioItem, VideoItem
from daemon.wire.vocabulary import Kind

Key = tuple[str, str, int]  # (stream, modality, seq)


@dataclass
class Held:
    """An item tandemd holds until a worker answers it or it is given up."""

    header: VideoItem | AudioItem
    payload: Any  # zmq.Frame, sent again without copying
    received_at: float
    deadline: float | None = None  # wall time after which it is too old to analyse
    sends: int = 0  # > 1 when re-sent after its worker died

    @property
    def key(self) -> Key:
        return (self.header.stream, self.header.type, self.header.seq)


@dataclass
class WorkerPeer:
    identity: bytes
    kind: Kind
    name: str
    capacity: int
    analyzers: list[str]
    last_heard: float
    child: str | None = None  # tandemd's child process it runs in (local workers)
    inflight: dict[Key, Held] = field(default_factory=dict)

    @property
    def credit(self) -> int:
        return self.capacity - len(self.inflight)
