"""Media time: seconds from the stream's first frame, monotonic whatever the source does.

Sources restart their timestamps (an encoder reboot, a concatenated transport stream),
jump (a camera's clock set), wrap (MPEG-TS counts 33 bits of 90 kHz: every 26.5 hours)
and reconnect (a new session starts from its own zero). `MediaClock` keeps one offset
per source container so that media time = source time + offset, and moves the offset
whenever a track's next timestamp is not where that track left off. Each track keeps
its own offset from there: at a restart the tracks of one container are cut at different
points (the decoder holds frames back), so a shared offset would be moved twice. Each
track continues where it ended, and tracks end within a frame of each other, so audio
and video stay lined up through every repair.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# 2**33 ticks of the MPEG-TS 90 kHz clock, in seconds.
MPEGTS_WRAP_S = 2**33 / 90000
# A track going back by more than this is a discontinuity (decoded frames come out in
# presentation order, so a genuine source never goes back by much).
BACKWARD_TOLERANCE_S = 0.5
# A track jumping ahead by more than this is a discontinuity, not a gap in the media:
# a silent live source would have hit its read timeout (at most 300 s) long before.
FORWARD_TOLERANCE_S = 300.0


@dataclass(slots=True)
class ClockStats:
    jumps: int = 0  # timestamps restarted or jumped; media time carried on
    wraps: int = 0  # MPEG-TS 33-bit wraparounds unwrapped
    sessions: int = 0  # sources opened (reconnects and loops included)


@dataclass(slots=True)
class _Track:
    last: float  # media time of the track's latest frame
    step: float  # its typical frame duration, used to place the frame after a jump
    offset: float | None  # media time - source time; None: take the session's


@dataclass
class MediaClock:
    """Maps each container's source seconds to one monotonic media timeline."""

    stats: ClockStats = field(default_factory=ClockStats)
    _offsets: dict[str, float] = field(default_factory=dict)
    _tracks: dict[str, _Track] = field(default_factory=dict)
    _anchor: float = 0.0
    last_jump: str = ""  # why the latest discontinuity was repaired, for the log

    def start_session(self, gap_s: float = 0.0) -> None:
        """A source (re)opened: its first timestamp continues `gap_s` after the last media."""
        self.stats.sessions += 1
        self._anchor = self.end + gap_s if self._tracks else 0.0
        self._offsets.clear()
        for track in self._tracks.values():
            track.offset = None

    def set_origin(self, group: str, origin_s: float) -> None:
        """The container's start time: its zero, shared by all its tracks."""
        self._offsets[group] = self._anchor - origin_s

    @property
    def end(self) -> float:
        """Where the media so far ends: the latest frame plus its duration."""
        return max((t.last + t.step for t in self._tracks.values()), default=0.0)

    def media_time(self, group: str, track: str, source_s: float, step_s: float) -> float:
        """Media time of a frame of `track` (in container `group`) at `source_s`."""
        if group not in self._offsets:
            self._offsets[group] = self._anchor - source_s
        state = self._tracks.get(track)
        if state is None:
            t = max(0.0, source_s + self._offsets[group])
            self._tracks[track] = _Track(t, step_s, t - source_s)
            return t
        if state.offset is None:
            state.offset = self._offsets[group]
        t = source_s + state.offset
        if t < state.last - BACKWARD_TOLERANCE_S or t > state.last + FORWARD_TOLERANCE_S:
            t = self._repair(state, source_s, t)
        t = max(t, state.last)  # never back, not even within the tolerance
        state.last, state.step = t, step_s or state.step
        return t

    def _repair(self, track: _Track, source_s: float, t: float) -> float:
        assert track.offset is not None
        back = track.last - t
        if abs(back - MPEGTS_WRAP_S) < FORWARD_TOLERANCE_S:
            track.offset += MPEGTS_WRAP_S
            self.stats.wraps += 1
            self.last_jump = "33-bit timestamp wraparound"
        else:
            track.offset = track.last + track.step - source_s
            self.stats.jumps += 1
            self.last_jump = f"timestamps jumped by {-back:+.3f} s"
        return source_s + track.offset
