"""The words shared by every process of tandem, defined once.

A worker has a *kind* (vision, audio); an item has a *modality* (video, audio); the two
are one axis named from either side, and these maps are the only place that crosses it.
A stream's health *states* are the ingest state machine's (streams.health), plus `ended`
on the results bus once a stream's last record is out.
"""

from __future__ import annotations

from typing import Literal, get_args

from streams.health import State

Kind = Literal["vision", "audio"]
Modality = Literal["video", "audio"]
KINDS: tuple[Kind, ...] = get_args(Kind)
MODALITIES: tuple[Modality, ...] = get_args(Modality)
KIND_OF: dict[Modality, Kind] = {"video": "vision", "audio": "audio"}
MODALITY_OF: dict[Kind, Modality] = {"vision": "video", "audio": "audio"}

StreamState = State
STREAM_STATES: tuple[StreamState, ...] = get_args(State)
PublishedState = Literal[State, "ended"]  # status.<stream> adds `ended` after the last record


def kind(name: str) -> Kind:
    """A kind from text already validated (argparse choices, config): vision or audio."""
    return "vision" if name == "vision" else "audio"


def modality_of(name: str) -> Modality:
    return MODALITY_OF[kind(name)]
