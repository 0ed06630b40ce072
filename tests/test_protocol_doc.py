"""docs/protocol.md holds one example of every message type, and each example is a valid
message of the protocol version the page and the code both name."""

from __future__ import annotations

import json
import re
import typing

import msgspec

from daemon.wire import protocol
from tests.conftest import ROOT

DOC = ROOT / "docs" / "protocol.md"


def _examples() -> list[dict[str, typing.Any]]:
    blocks = re.findall(r"^```json\n(.*?)^```", DOC.read_text(), re.M | re.S)
    return [json.loads(block) for block in blocks]


def _message_types() -> set[str]:
    return {message.type for message in protocol.MESSAGE_TYPES}


def test_every_message_type_has_exactly_one_example() -> None:
    types = [example["type"] for example in _examples()]
    assert sorted(types) == sorted(_message_types())


def test_every_example_is_a_valid_message_of_this_version() -> None:
    title = DOC.read_text().splitlines()[0]
    assert title == f"# Wire protocol (version {protocol.PROTOCOL_VERSION})"
    for example in _examples():
        header = json.dumps(example).encode()
        payloads = []
        if example["type"] in ("video", "audio"):  # an item: a payload of the size it says
            size = msgspec.json.decode(header, type=protocol.Item).payload_bytes()
            payloads = [bytes(size)]
        msg, _ = protocol.decode([header, *payloads])
        assert msg.type == example["type"]
        assert msg.v == protocol.PROTOCOL_VERSION
