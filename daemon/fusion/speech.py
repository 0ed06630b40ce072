"""Speech of one stream per window: voice-activity spans (`vad`) and transcript
(`transcribe`), from its audio results in media order.

A span is reported in every window it overlaps, clipped to it, with `open` true while it
has not ended yet (its end then is the window's end). Transcript text is reported in the
window whose audio completed the model's input: the model hears `hop_s` of new audio at
a time, so its segments carry their own media times, which may lie in earlier windows.
"""

from __future__ import annotations

from typing import Any

from daemon.wire.protocol import Result

MAX_SPANS = 256  # closed spans waiting for their window at most (bounded memory)


class StreamSpeech:
    def __init__(self) -> None:
        self._open: float | None = None
        self._closed: list[tuple[float, float]] = []
        self._text: list[str] = []
        self._segments: list[dict[str, Any]] = []
        self.seen_vad = False
        self.seen_transcribe = False

    def step(self, result: Result) -> None:
        vad = result.outputs.get("vad")
        if vad is not None:
            self.seen_vad = True
            self._vad(vad)
        words = result.outputs.get("transcribe")
        if words is not None:
            self.seen_transcribe = True
            self._transcribe(words)

    def window(self, start: float, end: float) -> dict[str, Any]:
        """This window's `speech` spans and `transcript`; what it used is forgotten."""
        spans = [
            {"start": round(max(s, start), 6), "end": round(min(e, end), 6), "open": False}
            for s, e in self._closed
            if e > start and s < end
        ]
        if self._open is not None and self._open < end:
            spans.append(
                {"start": round(max(self._open, start), 6), "end": round(end, 6), "open": True}
            )
        self._closed = [(s, e) for s, e in self._closed if e > end]
        out: dict[str, Any] = {}
        if self.seen_vad:
            out["speech"] = spans
        if self.seen_transcribe:
            text = " ".join(t for t in self._text if t)
            out["transcript"] = {"text": text or None, "segments": self._segments}
            self._text, self._segments = [], []
        return out

    def _vad(self, outputs: dict[str, Any]) -> None:
        starts = [(float(t), 1) for t in outputs.get("speech_starts") or [] if _number(t)]
        ends = [(float(t), 0) for t in outputs.get("speech_ends") or [] if _number(t)]
        for t, is_start in sorted(starts + ends):
            if is_start and self._open is None:
                self._open = t
            elif not is_start and self._open is not None:
                if len(self._closed) < MAX_SPANS:
                    self._closed.append((self._open, max(t, self._open)))
                self._open = None

    def _transcribe(self, outputs: dict[str, Any]) -> None:
        text = outputs.get("text")
        if isinstance(text, str) and text:
            self._text.append(text)
        for segment in outputs.get("segments") or []:
            if isinstance(segment, dict) and len(self._segments) < MAX_SPANS:
                self._segments.append(segment)


def _number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)
