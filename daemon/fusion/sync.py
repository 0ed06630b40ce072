"""A/V sync: a stream's audio-to-video offset from onsets that occur in both modalities.

Picture onsets are frames whose change from the previous frame (`motion.mean_diff`)
jumps above `VIDEO_RISE` from below half of it (a flash, a cut, a sudden movement), at
least `VIDEO_MIN_GAP_S` after the previous one.
Sound onsets come from the `onset` audio analyzer (a sudden rise in level). Each picture
onset is paired with the nearest sound onset within `MAX_OFFSET_S`; the offset is the
mean of the pairs that agree with their median within `AGREE_S` (audio later than video
reads positive). Confidence is the share of pairs that agree, scaled down while fewer
than `FULL_PAIRS` agree. Onsets are kept for the last `HISTORY` of each (bounded).
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import Any

from daemon.wire.protocol import Result

VIDEO_RISE = 0.08  # mean absolute pixel change, 0..1
VIDEO_MIN_GAP_S = 0.25  # a flash's end, or a cut's next frames, are not onsets of their own
MAX_OFFSET_S = 1.0
AGREE_S = 0.04
FULL_PAIRS = 4
HISTORY = 64


class SyncEstimator:
    def __init__(self) -> None:
        self.video: deque[float] = deque(maxlen=HISTORY)
        self.audio: deque[float] = deque(maxlen=HISTORY)
        self._previous_diff: float | None = None

    def step(self, result: Result) -> None:
        if result.modality == "video":
            motion = result.outputs.get("motion", {})
            diff = motion.get("mean_diff")
            if isinstance(diff, int | float) and not isinstance(diff, bool):
                before = self._previous_diff
                rising = diff >= VIDEO_RISE and (before is None or before < VIDEO_RISE / 2)
                if rising and (not self.video or result.pts - self.video[-1] >= VIDEO_MIN_GAP_S):
                    self.video.append(result.pts)
                self._previous_diff = float(diff)
            else:
                self._previous_diff = None  # a first frame or after a gap
        else:
            onsets = result.outputs.get("onset", {}).get("onsets")
            if isinstance(onsets, list):
                self.audio.extend(float(t) for t in onsets if isinstance(t, int | float))

    def estimate(self) -> dict[str, Any] | None:
        """{"offset_s", "confidence", "pairs"}; None until two onsets pair up."""
        offsets = []
        for v in self.video:
            nearest = min(self.audio, key=lambda a: abs(a - v), default=None)
            if nearest is not None and abs(nearest - v) <= MAX_OFFSET_S:
                offsets.append(nearest - v)
        if len(offsets) < 2:
            return None
        middle = statistics.median_low(offsets)  # one of them: at least one agrees
        agree = [d for d in offsets if abs(d - middle) <= AGREE_S]
        confidence = len(agree) / len(offsets) * min(1.0, len(agree) / FULL_PAIRS)
        return {
            "offset_s": round(sum(agree) / len(agree), 4),
            "confidence": round(confidence, 3),
            "pairs": len(agree),
        }
