"""Speech recognition with a Whisper-family transformers model, with timestamps, over a
sliding window of each stream's audio (by default windows of 10 s that do not overlap)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers.base import Modality, WorkItem
from daemon.workers.analyzers.pretrained import load
from daemon.workers.analyzers.specs import TranscribeOptions
from daemon.workers.analyzers.window import SlidingWindows, Window


class TranscribeAnalyzer:
    """Once per hop_s of new audio, over the last window_s: text, segments ([{start, end,
    text}] in media seconds) and window_start, window_end. Between runs text and the
    window are None and segments is []."""

    name: ClassVar[str] = "transcribe"
    modality: ClassVar[Modality] = "audio"

    def __init__(self, options: TranscribeOptions) -> None:
        import transformers

        self.options = options
        model, allow = options.model, options.allow_download
        self._extractor = load(transformers.AutoFeatureExtractor, model, allow)
        self._tokenizer = load(transformers.AutoTokenizer, model, allow)
        self._model = load(transformers.AutoModelForSpeechSeq2Seq, model, allow).eval()
        rate = int(self._extractor.sampling_rate)
        self._windows = SlidingWindows(rate, options.window_s, options.hop_s)

    def analyze(self, item: WorkItem) -> dict[str, JsonValue]:
        window = self._windows.push(item)
        if window is None:
            return {"text": None, "segments": [], "window_start": None, "window_end": None}
        decoded = self._decode(self._generate(window))
        segments: list[JsonValue] = []
        for offset in decoded.get("offsets", []):
            start, end = offset["timestamp"]
            end = start if end is None else end
            segments.append(
                {
                    "start": self._media_time(window, start),
                    "end": self._media_time(window, end),
                    "text": offset["text"].strip(),
                }
            )
        return {
            "text": decoded["text"].strip(),
            "segments": segments,
            "window_start": round(window.start, 3),
            "window_end": round(window.end, 3),
        }

    @staticmethod
    def _media_time(window: Window, offset: float) -> float:
        # Whisper sees the window padded to 30 s; a timestamp past the audio is clamped.
        return round(min(window.start + float(offset), window.end), 3)

    @torch.inference_mode()
    def _generate(self, window: Window) -> torch.Tensor:
        features: Any = self._extractor(
            window.samples.numpy(), sampling_rate=self._windows.rate, return_tensors="pt"
        )
        kwargs: dict[str, Any] = {"task": "transcribe"}
        if self.options.language is not None:
            kwargs["language"] = self.options.language
        out = self._model.generate(
            features.input_features,
            return_timestamps=True,
            max_new_tokens=self.options.max_new_tokens,
            **kwargs,
        )
        sequences: torch.Tensor = out if isinstance(out, torch.Tensor) else out["sequences"]
        return sequences[0]

    def _decode(self, tokens: torch.Tensor) -> dict[str, Any]:
        decoded: dict[str, Any] = self._tokenizer.decode(
            tokens.tolist(), skip_special_tokens=True, output_offsets=True
        )
        return decoded
