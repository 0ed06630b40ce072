"""Every message from a socket is validated before use."""

from __future__ import annotations

import json

import numpy as np
import pytest

from daemon import protocol
from daemon.protocol import PROTOCOL_VERSION, ProtocolError


def video_header(**changes: object) -> bytes:
    header = {
        "v": PROTOCOL_VERSION,
        "type": "video",
        "stream": "cam",
        "seq": 1,
        "pts": 0.2,
        "duration": 0.2,
        "wall": 1.0,
        "shape": [2, 3, 3],
        "dtype": "uint8",
    }
    header.update(changes)
    return json.dumps(header).encode()


def test_valid_video_item_round_trips() -> None:
    payload = np.zeros((2, 3, 3), np.uint8).tobytes()
    msg, payloads = protocol.decode([video_header(), payload])
    assert isinstance(msg, protocol.VideoItem)
    assert (msg.stream, msg.seq, msg.shape) == ("cam", 1, (2, 3, 3))
    assert payloads == [payload]


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([], "malformed"),
        ([b"not json"], "malformed"),
        ([b"[1, 2]"], "malformed"),
        ([video_header(v=99), bytes(18)], "version"),
        ([video_header(type="nope"), bytes(18)], "malformed"),
        ([video_header(seq=-1), bytes(18)], "malformed"),
        ([video_header(extra=1), bytes(18)], "malformed"),
        ([video_header(), bytes(17)], "size"),
        ([video_header()], "malformed"),
        ([video_header(shape=[2, 3, 4]), bytes(24)], "malformed"),
        ([video_header(shape=[100000, 1, 3]), bytes(300000)], "malformed"),
        ([json.dumps({"v": PROTOCOL_VERSION, "type": "heartbeat"}).encode(), b"x"], "malformed"),
    ],
)
def test_bad_messages_are_refused_with_a_reason(frames: list[bytes], reason: str) -> None:
    with pytest.raises(ProtocolError) as err:
        protocol.decode(frames)
    assert err.value.reason == reason


def test_version_error_names_both_versions() -> None:
    with pytest.raises(ProtocolError) as err:
        protocol.decode([json.dumps({"v": 0, "type": "register"}).encode()])
    assert f"protocol version 0, this side speaks {PROTOCOL_VERSION}" in str(err.value)
