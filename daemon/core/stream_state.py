"""Everything tandemd's pipeline keeps of one stream, in one place: added when the stream
starts, removed as one when it goes (reload). Owners of other per-stream state (the
dispatcher, the ingest hub, the overload policy, stage clocks, snapshot rings, metric
series) each have a `forget(stream)`-style method that `Pipeline.remove_stream` calls.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from daemon.config import StreamConfig
from daemon.fusion.fuser import StreamFuser
from daemon.wire import protocol
from daemon.wire.vocabulary import MODALITIES


@dataclass
class MediaTimeline:
    """Keeps a stream's media time and sequence numbers rising across ingest restarts."""

    sessions: int = 0
    pts_offset: float = 0.0
    seq_offset: dict[str, int] = field(default_factory=lambda: {"video": 0, "audio": 0})
    last_end: float = 0.0
    next_seq: dict[str, int] = field(default_factory=lambda: {"video": 0, "audio": 0})

    def restart(self) -> None:
        self.sessions += 1
        if self.sessions > 1:
            self.pts_offset = self.last_end
            self.seq_offset = dict(self.next_seq)

    def rebase(self, header: protocol.VideoItem | protocol.AudioItem) -> Any:
        if self.sessions > 1:
            header = msgspec.structs.replace(
                header,
                pts=header.pts + self.pts_offset,
                seq=header.seq + self.seq_offset[header.type],
            )
        self.last_end = max(self.last_end, header.pts + header.duration)
        self.next_seq[header.type] = max(self.next_seq[header.type], header.seq + 1)
        return header


@dataclass
class StreamState:
    config: StreamConfig
    fuser: StreamFuser
    timeline: MediaTimeline = field(default_factory=MediaTimeline)
    sender_offset: float | None = None  # sender wall clock - media time (RTCP), once known
    last_record: dict[str, Any] | None = None  # the last fused record published
    ending: str | None = None  # its end reason, until its last window is out
    requested_fps: float | None = None  # the video analysis fps a cascade asked for
    # On-demand analyzers a cascade switched on, with how many actions hold each on.
    requested_analyzers: Counter[str] = field(default_factory=Counter)

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def live(self) -> bool:
        return self.config.mode == "live"

    @property
    def objective_s(self) -> float | None:
        """Live streams give up items older than this; files never do."""
        return self.config.latency_objective_ms / 1000 if self.live else None

    @property
    def wanted(self) -> frozenset[str]:
        """The modalities the config asks of the stream."""
        return frozenset(m for m in MODALITIES if getattr(self.config, m))
