"""decode_threads = "auto": the cores shared out over the video streams, as slice threads."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import av
import pytest

from daemon.config import ConfigError, parse_config
from daemon.core.startup import ingest_launch
from streams import SourceSpec, auto_decode_threads
from streams.decode import configure_video
from tests.support.media import encode_clip


def test_auto_shares_the_cores_out_over_the_video_streams() -> None:
    assert auto_decode_threads(1, 2) == 2
    assert auto_decode_threads(2, 2) == 1
    assert auto_decode_threads(3, 8) == 2
    assert auto_decode_threads(16, 2) == 1  # never below one
    assert auto_decode_threads(0, 4) == 4  # audio-only configs: nothing to share


def ingest_spec(streams: list[dict[str, object]], stream_id: str) -> dict[str, object]:
    config = parse_config({"streams": streams})
    launch = ingest_launch(config, stream_id, "ipc://x")
    return asdict(launch.spec)


def test_tandemd_resolves_auto_when_it_starts_a_stream() -> None:
    cores = len(os.sched_getaffinity(0))
    one = ingest_spec([{"id": "a", "url": "x"}], "a")
    assert (one["decode_threads"], one["slice_threads"]) == (cores, True)
    # An audio-only stream takes no share.
    two = [
        {"id": "a", "url": "x"},
        {"id": "b", "url": "y"},
        {"id": "c", "url": "z", "video": False},
    ]
    assert ingest_spec(two, "a")["decode_threads"] == max(1, cores // 2)
    fixed = ingest_spec([{"id": "a", "url": "x", "decode_threads": 1}], "a")
    assert (fixed["decode_threads"], fixed["slice_threads"]) == (1, False)


def test_a_bad_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"streams\[0\]\(id='a'\)\.decode_threads"):
        parse_config({"streams": [{"id": "a", "url": "x", "decode_threads": "many"}]})


def test_slice_threads_are_set_on_the_decoder(tmp_path: Path) -> None:
    clip = encode_clip(tmp_path / "c.mp4", seconds=0.5, audio=False)
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        configure_video(SourceSpec("s", str(clip), decode_threads=2, slice_threads=True), stream)
        assert (stream.codec_context.thread_count, stream.codec_context.thread_type.name) == (
            2,
            "SLICE",
        )
        frames = sum(1 for _ in container.decode(stream))
    assert frames == 15
