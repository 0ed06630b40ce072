"""A stream's health says media flows only when media arrives: the few packets a
demuxer lets go when a silent source finally ends are not a recovery."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import pytest

from daemon.wire import protocol
from streams import SourceSpec
from tests.support.ingest_peer import IngestPeer
from tests.support.media import moving_square

SILENCE_S = 3.0


def bframe_ts(path: Path, frames: int = 150) -> bytes:
    """MPEG-TS H.264 with B-frames: the demuxer and decoder hold packets back, which
    they let go only when the source ends."""
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.options = {"preset": "veryfast", "bf": "3", "g": "25"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(moving_square(i, 160, 120), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path.read_bytes()


@pytest.fixture
def falls_silent(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[int]:
    """An HTTP server that sends half a stream, falls silent for SILENCE_S, then hangs up,
    or with param "resumes" sends the rest at about its real-time rate first (later
    connections are accepted and never answered)."""
    resumes = getattr(request, "param", "") == "resumes"
    data = bframe_ts(tmp_path / "b.ts")
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\n\r\n")
        conn.sendall(data[: len(data) // 2])
        done.wait(SILENCE_S)
        rest = data[len(data) // 2 :] if resumes else b""
        step = len(rest) // 30 + 1
        for i in range(0, len(rest), step):  # 3 s of media over about 3 s
            conn.sendall(rest[i : i + step])
            done.wait(0.1)
        conn.close()
        while not done.is_set():
            server.settimeout(0.2)
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    done.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


def spec_for(port: int) -> SourceSpec:
    return SourceSpec(
        "cam",
        f"http://127.0.0.1:{port}/live.ts",
        live=True,
        fps=25,  # every frame an item: the held-back ones too
        width=160,
        height=120,
        open_timeout_s=2.0,
        read_timeout_s=SILENCE_S + 3.0,  # the hang-up ends the session, not a timeout
        stall_timeout_s=1.0,
        reconnect_min_s=0.2,
        reconnect_max_s=0.5,
    )


@pytest.mark.slow
def test_no_running_state_between_a_stall_and_the_reconnect(
    tmp_path: Path, falls_silent: int
) -> None:
    peer = IngestPeer(tmp_path, spec_for(falls_silent))
    try:
        assert peer.pump_until(lambda: "reconnecting" in peer.states(), 30), peer.states()
        states = peer.of(protocol.IngestState)
        names = [s.state for s in states]
        first_stall = names.index("stalled")
        reconnect = names.index("reconnecting")
        assert names[: first_stall + 1] == ["running", "stalled"], names
        # What the hang-up let go (held-back packets, decoded at once) is no recovery.
        assert names[first_stall:reconnect] == ["stalled"], [(s.state, s.reason) for s in states]
        # It did arrive and was used: items after the stall, from before it.
        stalled_at = next(t for t, m in peer.messages if m is states[first_stall])
        late = [m for t, m in peer.messages if t > stalled_at and isinstance(m, protocol.VideoItem)]
        assert late, "the held-back frames were expected to arrive after the stall"
    finally:
        peer.close()


@pytest.mark.slow
@pytest.mark.parametrize("falls_silent", ["resumes"], indirect=True)
def test_media_that_comes_back_after_a_stall_is_running_again(
    tmp_path: Path, falls_silent: int
) -> None:
    peer = IngestPeer(tmp_path, spec_for(falls_silent))
    try:
        assert peer.pump_until(lambda: "reconnecting" in peer.states(), 30), peer.states()
        states = [(s.state, s.reason) for s in peer.of(protocol.IngestState)]
        names = [name for name, _ in states]
        assert names[: names.index("reconnecting")] == ["running", "stalled", "running"], states
        assert states[2][1].startswith("media flowing again for 0.")
    finally:
        peer.close()
