"""Onset: media times where the sound level rises suddenly (a beep, a clap, a cut).

The chunk is cut in 10 ms frames; a frame whose RMS is `rise_db` above the quietest of
the previous 100 ms (across chunks of the same stream) and at least `min_level_dbfs` is
an onset, placed at the first sample of the frame reaching half its peak. Fusion pairs
these with picture onsets to estimate the stream's audio-to-video offset.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.following import Followed
from daemon.workers.analyzers.specs import OnsetOptions

FRAME_S = 0.01
HISTORY_FRAMES = 10  # 100 ms


@dataclass
class _State:
    recent_db: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_FRAMES))
    last_onset: float = -1e9


class OnsetAnalyzer:
    """onsets (media times in the chunk, s) and count."""

    name: ClassVar[str] = "onset"
    modality: ClassVar[Modality] = "audio"

    def __init__(self, options: OnsetOptions | None = None) -> None:
        self.options = options or OnsetOptions()
        self._streams: Followed[_State] = Followed(lambda item: _State())

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        state = self._streams.state_for(item)
        hop = max(1, round(item.rate * FRAME_S))
        x = item.tensor.reshape(-1).float()
        frames = x[: x.numel() // hop * hop].reshape(-1, hop)
        rms_db = 20 * torch.log10(frames.square().mean(dim=1).sqrt().clamp_min(1e-5))
        onsets: list[JsonValue] = []
        for i, db in enumerate(rms_db.tolist()):
            t = item.pts + i * hop / item.rate
            floor = min(state.recent_db) if state.recent_db else -100.0
            rising = db >= self.options.min_level_dbfs and db - floor >= self.options.rise_db
            if rising and t - state.last_onset >= self.options.min_gap_s:
                frame = frames[i].abs()
                first = int(torch.nonzero(frame >= frame.max() / 2)[0])
                state.last_onset = t
                onsets.append(round(t + first / item.rate, 6))
            state.recent_db.append(db)
        return {"onsets": onsets, "count": len(onsets)}
