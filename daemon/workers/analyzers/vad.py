"""Voice activity with silero-vad: a speech probability every 32 ms, speech spans with
silero's own streaming rules (start at `threshold`, end after `min_silence_ms` below
`threshold - 0.15`, spans padded by `speech_pad_ms`), followed across chunks per stream.

Frames do not align with chunks: the samples after a chunk's last whole frame wait for
the next chunk. Audio at other rates is resampled to 16 kHz per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.following import Followed, at_rate
from daemon.workers.analyzers.silero import FRAME, RATE, SileroState, SileroVad
from daemon.workers.analyzers.specs import VadOptions

FRAME_S = FRAME / RATE
NEGATIVE_MARGIN = 0.15  # silero's hysteresis: speech ends below threshold - 0.15


@dataclass(slots=True)
class _Stream:
    next_time: float  # media time of the first sample in `pending`
    pending: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    model: SileroState = field(default_factory=SileroState)
    speaking: bool = False
    quiet_since: float | None = None  # start of the first low frame inside speech


@dataclass(slots=True)
class _Decisions:
    starts: list[JsonValue] = field(default_factory=list)
    ends: list[JsonValue] = field(default_factory=list)
    speaking_frames: int = 0


class VadAnalyzer:
    """speech (in speech during the chunk), speech_ratio (share of its frames in speech),
    speech_prob and speech_prob_max (silero's probability), speech_starts and
    speech_ends (media times of span boundaries decided by this chunk)."""

    name: ClassVar[str] = "vad"
    modality: ClassVar[Modality] = "audio"

    def __init__(self, options: VadOptions | None = None) -> None:
        self.options = options or VadOptions()
        self._vad = SileroVad()
        self._streams: Followed[_Stream] = Followed(lambda item: _Stream(item.pts))

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        s = self._streams.state_for(item)
        samples = at_rate(item.tensor.float(), item.rate, RATE)
        joined = torch.cat([s.pending, samples])
        probs = self._vad.probabilities(joined, s.model)
        first = s.next_time
        used = probs.numel() * FRAME
        s.pending = joined[used:].clone()
        s.next_time = first + used / RATE
        decided = self._decide(s, probs.tolist(), first)
        count = probs.numel()
        return {
            "speech": decided.speaking_frames > 0,
            "speech_ratio": round(decided.speaking_frames / count, 4) if count else 0.0,
            "speech_prob": round(float(probs.mean()), 4) if count else None,
            "speech_prob_max": round(float(probs.max()), 4) if count else None,
            "speech_starts": decided.starts,
            "speech_ends": decided.ends,
        }

    def _decide(self, s: _Stream, probs: list[float], first: float) -> _Decisions:
        """silero's VADIterator rules, with times in media seconds."""
        o = self.options
        pad, min_silence = o.speech_pad_ms / 1000, o.min_silence_ms / 1000
        out = _Decisions()
        for i, p in enumerate(probs):
            t = first + i * FRAME_S
            if p >= o.threshold:
                s.quiet_since = None
                if not s.speaking:
                    s.speaking = True
                    out.starts.append(round(max(t - pad, 0.0), 4))
            elif s.speaking and p < o.threshold - NEGATIVE_MARGIN:
                if s.quiet_since is None:
                    s.quiet_since = t
                if t - s.quiet_since >= min_silence:
                    s.speaking = False
                    out.ends.append(round(s.quiet_since + pad, 4))
                    s.quiet_since = None
            out.speaking_frames += s.speaking
        return out
