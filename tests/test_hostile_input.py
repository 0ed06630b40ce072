"""10,000 malformed, wrong-version, mis-sized, random and oversize messages from a hostile
peer leave tandemd up, its stream flowing and every rejection counted by reason."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
import zmq

from daemon.publishing.subscriber import Subscriber
from daemon.wire.protocol import PROTOCOL_VERSION
from tests.conftest import free_port, metric, wait_until
from tests.test_dispatch_faults import LIVE, next_records

pytestmark = pytest.mark.slow
MAX_BYTES = 1 << 20


def hostile_messages(n: int, seed: int = 7) -> tuple[list[list[bytes]], dict[str, int]]:
    """Deterministic junk and the rejection reason each must be counted under."""
    rng = random.Random(seed)
    video = {
        "v": PROTOCOL_VERSION,
        "type": "video",
        "stream": "cam",
        "seq": 1,
        "pts": 0.0,
        "duration": 0.2,
        "wall": 1.0,
        "shape": [10, 10, 3],
        "dtype": "uint8",
    }
    makers = {
        "malformed": [
            lambda: [b"\xff" + rng.randbytes(rng.randrange(0, 64))],  # not UTF-8, not JSON
            lambda: [b"[1, 2, 3]"],
            lambda: [json.dumps({"v": PROTOCOL_VERSION, "type": "bogus"}).encode()],
            lambda: [json.dumps({**video, "seq": -5}).encode(), bytes(300)],
            lambda: [b"\xff", *[rng.randbytes(rng.randrange(1, 512)) for _ in range(3)]],
            lambda: [b'{"v": 2, "type": "result", "outputs": {"a": {"b": ' + b"[" * 100_000],
        ],
        "version": [
            lambda: [
                json.dumps(
                    {"v": PROTOCOL_VERSION + rng.randrange(1, 99), "type": "heartbeat"}
                ).encode()
            ]
        ],
        "size": [lambda: [json.dumps(video).encode(), bytes(rng.choice([0, 1, 299, 301, 5000]))]],
    }
    messages, counts = [], {reason: 0 for reason in makers}
    for _ in range(n):
        reason = rng.choice(list(makers))
        messages.append(rng.choice(makers[reason])())
        counts[reason] += 1
    return messages, counts


def test_hostile_peer_cannot_hurt_tandemd(tandemd, tmp_path: Path) -> None:
    pub, port, dispatch = free_port(), free_port(), free_port()
    daemon = tandemd(f"""
runtime_dir = "{tmp_path}/run"
[log]
digest_s = 0
[[streams]]
{LIVE}
[dispatch]
endpoint = "tcp://127.0.0.1:{dispatch}"
max_message_bytes = {MAX_BYTES}
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = {port}
""")
    messages, expected = hostile_messages(10_000)
    ctx = zmq.Context()
    with Subscriber(f"tcp://127.0.0.1:{pub}", ["fused."]) as sub:
        next_records(sub, 2, timeout_s=30)
        hostile = ctx.socket(zmq.DEALER)
        hostile.setsockopt(zmq.LINGER, 0)
        hostile.connect(f"tcp://127.0.0.1:{dispatch}")
        for frames in messages:
            hostile.send_multipart(frames)
        # Oversize messages, each on its own connection: each is counted once, as `size`,
        # and the only disconnects are the 3 peers closing (libzmq's own cap is at twice
        # max_message_bytes; past it a close could not be told from a peer leaving).
        disconnects_before = metric(port, "tandem_peer_disconnects_total", socket="dispatch")
        for _ in range(3):
            big = ctx.socket(zmq.DEALER)
            big.setsockopt(zmq.LINGER, 0)
            big.connect(f"tcp://127.0.0.1:{dispatch}")
            big.send(bytes(MAX_BYTES + 1))
            time.sleep(0.2)
            big.close()
        expected["size"] += 3

        def rejected(reason: str) -> float:
            return metric(port, "tandem_messages_rejected_total", socket="dispatch", reason=reason)

        assert wait_until(lambda: sum(rejected(r) for r in expected) == 10_003, 60)
        for reason, count in expected.items():
            assert rejected(reason) == count, reason
        assert wait_until(
            lambda: (
                metric(port, "tandem_peer_disconnects_total", socket="dispatch")
                == disconnects_before + 3
            ),
            10,
        )
        time.sleep(0.5)  # nothing more comes: a message is never also counted as a disconnect
        assert metric(port, "tandem_peer_disconnects_total", socket="dispatch") == (
            disconnects_before + 3
        )
        hostile.close()
        # Still up, still analysing both modalities of its stream.
        assert daemon.proc.poll() is None
        after = next_records(sub, 3)
        assert all(r["missing"] == [] and r["video"]["results"] > 0 for r in after)
        assert metric(port, "tandem_workers", kind="vision") == 1
    ctx.term()
    # Rejections are logged at most once per peer and reason every 10 s, not 10,000 times.
    assert daemon.log().count("dropped a message from worker peer") <= 10
