"""silero-vad's model (the TorchScript file its wheel ships, MIT) driven with explicit
per-stream state, and batched: the front end (STFT and encoder) runs on every 32 ms
frame of a chunk at once, the LSTM runs over the chunk's frames in one call.

The result is the probability silero's own stateful `model(frame, 16000)` gives frame
by frame (tests compare the two), at a fraction of the per-frame call overhead.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import torch

RATE = 16000
FRAME = 512  # samples per decision at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous frame each frame sees
HIDDEN = 128


@dataclass(slots=True)
class SileroState:
    """What one stream carries from chunk to chunk."""

    h: torch.Tensor = field(default_factory=lambda: torch.zeros(1, 1, HIDDEN))
    c: torch.Tensor = field(default_factory=lambda: torch.zeros(1, 1, HIDDEN))
    context: torch.Tensor = field(default_factory=lambda: torch.zeros(CONTEXT))


def load_jit() -> Any:
    """The TorchScript model from the silero_vad wheel: no download."""
    threads = torch.get_num_threads()
    # Importing the silero_vad package calls torch.set_num_threads(1); keep the worker's.
    path = resources.files("silero_vad.data").joinpath("silero_vad.jit")
    torch.set_num_threads(threads)
    with warnings.catch_warnings():
        # silero-vad ships TorchScript; torch 2.14 warns that torch.jit.load is deprecated.
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.load` is deprecated", category=FutureWarning
        )
        load: Any = torch.jit.load  # untyped in torch's stubs
        model = load(str(path), map_location="cpu")
    return model.eval()


class SileroVad:
    """Speech probabilities of whole 512-sample frames at 16 kHz."""

    def __init__(self, jit: Any = None) -> None:
        jit = jit if jit is not None else shared_jit()
        inner: Any = jit._model
        self._stft = inner.stft
        self._encoder = inner.encoder
        self._head = inner.decoder.decoder  # dropout, relu, 1x1 conv, sigmoid
        cell: Any = inner.decoder.rnn
        self._lstm = torch.nn.LSTM(HIDDEN, HIDDEN, batch_first=True)
        self._lstm.load_state_dict(
            {
                f"{name}_l0": getattr(cell, name)
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            }
        )
        self._lstm.eval()

    @torch.inference_mode()
    def probabilities(self, samples: torch.Tensor, state: SileroState) -> torch.Tensor:
        """One probability per whole frame of `samples` (a multiple of FRAME long)."""
        count = samples.numel() // FRAME
        if count == 0:
            return torch.zeros(0)
        joined = torch.cat([state.context, samples[: count * FRAME]])
        frames = joined.unfold(0, FRAME + CONTEXT, FRAME)
        features = self._encoder(self._stft(frames)).squeeze(-1)  # (count, HIDDEN)
        hidden, (state.h, state.c) = self._lstm(features[None], (state.h, state.c))
        probs: torch.Tensor = self._head(hidden[0][:, :, None]).flatten()
        state.context = joined[-CONTEXT:].clone()
        return probs


@cache
def shared_jit() -> Any:
    return load_jit()
