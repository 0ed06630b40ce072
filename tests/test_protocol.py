"""Every message from a socket is validated before use."""

from __future__ import annotations

import json

import numpy as np
import pytest

from daemon.wire import protocol
from daemon.wire.protocol import PROTOCOL_VERSION, ProtocolError


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


def deeply_nested_result() -> bytes:
    """A result whose outputs nest far past any parser's recursion limit."""
    depth = 100_000
    return (
        b'{"v": 2, "type": "result", "stream": "cam", "modality": "video", "seq": 1, "pts": 0, '
        b'"wall": 0, "infer_s": 0, "outputs": {"a": {"b": ' + b"[" * depth + b"]" * depth + b"}}}"
    )


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
        ([deeply_nested_result()], "malformed"),
        ([video_header(seq=2**63), bytes(18)], "malformed"),
        ([video_header(seq="5"), bytes(18)], "malformed"),
    ],
)
def test_bad_messages_are_refused_with_a_reason(frames: list[bytes], reason: str) -> None:
    with pytest.raises(ProtocolError) as err:
        protocol.decode(frames)
    assert err.value.reason == reason


def test_a_part_over_max_bytes_is_refused_as_size_before_it_is_parsed() -> None:
    header = video_header(shape=[10, 10, 3])
    payload = bytes(300)
    assert protocol.decode([header, payload], max_bytes=300)[1] == [payload]
    for frames in ([header, bytes(301)], [b"x" * 301]):  # the header is bounded too
        with pytest.raises(ProtocolError) as err:
            protocol.decode(frames, max_bytes=300)
        assert err.value.reason == "size"
        assert "over max_message_bytes 300" in str(err.value)


def test_version_error_names_both_versions() -> None:
    with pytest.raises(ProtocolError) as err:
        protocol.decode([json.dumps({"v": 0, "type": "register"}).encode()])
    assert f"protocol version 0, this side speaks {PROTOCOL_VERSION}" in str(err.value)


def test_an_analyzers_numpy_scalars_go_as_numbers_and_other_objects_are_refused() -> None:
    assert protocol.encode_value({"mean": np.float32(0.5), "n": np.int64(3)}) == (
        b'{"mean":0.5,"n":3}'
    )
    with pytest.raises(TypeError, match="object is not a JSON value"):
        protocol.encode_value({"mean": object()})


def test_messages_built_here_decode_back_equal() -> None:
    item = protocol.AudioItem(
        v=PROTOCOL_VERSION, stream="mic", seq=3, pts=1.5, wall=2.0, rate=16000, shape=(4, 2)
    )
    decoded, _ = protocol.decode([protocol.encode(item), bytes(32)])
    assert decoded == item and decoded.channels == 2 and decoded.duration == 4 / 16000
    assert b"skip" not in protocol.encode(item) and b"sender_wall" not in protocol.encode(item)


def test_each_message_types_type_is_its_wire_tag() -> None:
    # `type` is written twice per class (msgspec's tag, a ClassVar for readers): one value.
    for message in protocol.MESSAGE_TYPES:
        assert message.type == message.__struct_config__.tag, message
