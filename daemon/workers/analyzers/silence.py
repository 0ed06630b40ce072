"""Silence: runs of samples below a threshold lasting at least a minimum duration, with
their start and end in media time, followed across chunks per stream.

Decisions are per sample, as FFmpeg's silencedetect makes them, so boundaries are exact
to the sample at the worker rate; a silence is reported once it has lasted
`min_duration_s` (its start then lies in the past, possibly in an earlier chunk).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.following import Followed, chunk_end
from daemon.workers.analyzers.runs import amplitude, runs
from daemon.workers.analyzers.specs import SilenceOptions

_EPS_S = 1e-9


@dataclass(slots=True)
class _Stream:
    run_start: float | None = None  # media time the quiet run open at the last chunk began
    confirmed: bool = False  # that run has lasted min_duration_s: it is a silence


class SilenceAnalyzer:
    """silent (the chunk ends inside a silence), silence_s (how long so far),
    quiet_ratio (share of the chunk's samples below the threshold), silence_starts and
    silence_ends (media times of boundaries reported by this chunk)."""

    name: ClassVar[str] = "silence"
    modality: ClassVar[Modality] = "audio"

    def __init__(self, options: SilenceOptions | None = None) -> None:
        self.options = options or SilenceOptions()
        self._threshold = amplitude(self.options.threshold_dbfs)
        self._streams: Followed[_Stream] = Followed(lambda item: _Stream())

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        s = self._streams.state_for(item)
        quiet = item.tensor.abs() < self._threshold
        n, rate, end = quiet.numel(), item.rate, chunk_end(item)
        starts, ends = runs(quiet)
        wanted = (starts == 0) | (ends == n) | (ends - starts >= self.options.min_duration_s * rate)
        began: list[JsonValue] = []
        ended: list[JsonValue] = []
        carried, confirmed = s.run_start, s.confirmed
        if carried is not None and not (starts.numel() and int(starts[0]) == 0):
            if confirmed:  # the silence ended on this chunk's first sample
                ended.append(round(item.pts, 4))
            carried = None
        s.run_start, s.confirmed = None, False
        for a, b in zip(starts[wanted].tolist(), ends[wanted].tolist(), strict=True):
            continued = a == 0 and carried is not None
            begin = carried if continued and carried is not None else item.pts + a / rate
            known = confirmed if continued else False
            stop = end if b == n else item.pts + b / rate
            long_enough = stop - begin >= self.options.min_duration_s - _EPS_S
            if long_enough and not known:
                began.append(round(begin, 4))
            if b == n:
                s.run_start, s.confirmed = begin, known or long_enough
            elif long_enough:
                ended.append(round(stop, 4))
        return {
            "silent": s.run_start is not None and s.confirmed,
            "silence_s": round(end - s.run_start, 4) if s.run_start is not None else 0.0,
            "quiet_ratio": round(float(quiet.float().mean()), 4) if n else 0.0,
            "silence_starts": began,
            "silence_ends": ended,
        }
