"""What a process costs in memory: a vision worker whose analyzers need no model never
loads torch, and stays within the PSS bound of issue 21 once it has analysed frames; an
ingest process of a 360p stream stays within its own.

The worker is a real process started with the shipped config's vision analyzers and
options, the command line tandemd gives it, registered with a ROUTER in the test; the
ingest process is a real one too (tests/support/ingest_peer.py).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq

from daemon.config import load_config
from daemon.wire import protocol
from daemon.workers.analyzers import spec_for
from daemon.workers.launch import WorkerLaunch
from streams import SourceSpec
from tests.conftest import ROOT
from tests.support.blocked_imports import runs_without
from tests.support.ingest_peer import IngestPeer
from tests.support.vision_clips import faces_and_persons_frame

WORKER_PSS_MAX = 150 << 20  # issue 21: a vision worker without a torch model


def pss_bytes(pid: int) -> int:
    """The process's proportional set size, from /proc/<pid>/smaps_rollup."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no Pss in /proc/{pid}/smaps_rollup")


def private_bytes(pid: int) -> int:
    """The process's own pages (USS), from /proc/<pid>/smaps_rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Private_Clean", "Private_Dirty"):
            fields[name] = int(rest.split()[0]) * 1024
    assert len(fields) == 2, f"no Private_* in /proc/{pid}/smaps_rollup"
    return sum(fields.values())


def mapped_files(pid: int) -> set[str]:
    return {
        parts[5] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
        if len(parts := line.split(maxsplit=5)) == 6
    }  # fmt: skip


class Dispatcher:
    """tandemd's side of the worker link: registers the worker, sends frames, reads
    results."""

    def __init__(self) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.endpoint = f"tcp://127.0.0.1:{self.sock.bind_to_random_port('tcp://127.0.0.1')}"
        self.identity = b""

    def recv(self, timeout_s: float = 30.0) -> protocol.Message:
        assert self.sock.poll(int(timeout_s * 1000)), "the worker said nothing"
        self.identity, *frames = self.sock.recv_multipart()
        return protocol.decode(frames)[0]

    def register(self) -> protocol.Register:
        while not isinstance(msg := self.recv(), protocol.Register):
            pass
        welcome = protocol.Welcome(v=protocol.PROTOCOL_VERSION, heartbeat_ms=200, liveness=25)
        self.sock.send_multipart([self.identity, protocol.encode(welcome)])
        return msg

    def analyse(self, stream: str, seq: int, image: np.ndarray) -> protocol.Result:
        header = protocol.VideoItem(v=protocol.PROTOCOL_VERSION, stream=stream, seq=seq,
                                    pts=seq * 0.2, duration=0.2, wall=time.time(),
                                    shape=image.shape)  # fmt: skip
        self.sock.send_multipart([self.identity, protocol.encode(header), image.tobytes()])
        while True:
            msg = self.recv()
            if isinstance(msg, protocol.Result):
                return msg

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


@contextlib.contextmanager
def shipped_vision_worker() -> Iterator[tuple[subprocess.Popen[bytes], Dispatcher]]:
    pool = load_config(ROOT / "config.toml").workers.vision
    dispatcher = Dispatcher()
    launch = WorkerLaunch(
        kind="vision",
        endpoint=dispatcher.endpoint,
        capacity=pool.capacity,
        analyzers=tuple(pool.analyzers),
        options=dict(pool.options),
        threads=pool.threads,
        heartbeat_ms=200,
        log_level="warning",
    )
    worker = subprocess.Popen([sys.executable, "-m", *launch.argv()], cwd=ROOT)
    try:
        yield worker, dispatcher
    finally:
        worker.terminate()
        worker.wait(20)
        dispatcher.close()


@pytest.mark.slow
def test_a_vision_worker_without_models_never_loads_torch_and_stays_small() -> None:
    pool = load_config(ROOT / "config.toml").workers.vision
    assert not any(spec_for(name, "video").uses_torch for name in pool.analyzers)
    with shipped_vision_worker() as (worker, dispatcher):
        assert dispatcher.register().analyzers == list(pool.analyzers)
        # Faces, then people, then an empty scene (the detectors run on whole frames and
        # regions), on three streams: what a worker holds per stream is in the figure.
        for seq in range(30):
            for stream in ("a", "b", "c"):
                result = dispatcher.analyse(stream, seq, faces_and_persons_frame(seq))
                assert not result.errors, result.errors
                assert set(result.outputs) == set(pool.analyzers)
        loaded = mapped_files(worker.pid)
        pss = pss_bytes(worker.pid)
    torch_files = sorted(f for f in loaded if "/torch/" in f or "libtorch" in f)
    assert not torch_files, torch_files[:5]
    print(f"vision worker PSS {pss / 2**20:.0f} MiB")
    assert pss <= WORKER_PSS_MAX, f"vision worker PSS {pss / 2**20:.0f} MiB"


def test_the_worker_side_of_frame_analyzers_imports_without_torch() -> None:
    """The imports a worker makes for the frame analyzers, with torch made unimportable."""
    names = ",".join(repr(n) for n in ("motion", "black", "frozen", "scene", "blur", "faces",
                                       "persons"))  # fmt: skip
    code = (
        "import numpy as np\n"
        "import daemon.workers.main, daemon.workers.worker, daemon.workers.batching\n"
        "from daemon.workers.analyzers import WorkItem, build\n"
        f"built = build([{names}], 'video', {{'faces': {{'gate': 'motion_regions'}}}})\n"
        "for seq in range(3):\n"
        "    frame = np.full((240, 320, 3), 40 * seq, np.uint8)\n"
        "    item = WorkItem('s', 'video', seq, seq * 0.2, frame, duration=0.2)\n"
        "    [a.analyze(item) for a in built]\n"
        "print('ok')\n"
    )
    out = runs_without(("torch", "transformers", "torchaudio"), code)
    assert out.stdout.strip() == "ok", out.stderr


INGEST_PRIVATE_MAX = 40 << 20  # issue 21: per ingest process (each added stream)
LAVFI_360P = "testsrc2=size=640x360:rate=30[out0];sine=frequency=440:sample_rate=48000[out1]"


def test_an_ingest_process_of_a_360p_stream_stays_small(tmp_path: Path) -> None:
    """A real ingest process on the shipped lavfi test stream, granted credit by a ROUTER
    in this process (which maps the same libraries tandemd does, as the PSS split goes
    in the service)."""
    spec = SourceSpec("m", LAVFI_360P, format="lavfi", pace="realtime", live=True)
    peer = IngestPeer(tmp_path, spec)
    try:
        assert peer.pump_until(lambda: len(peer.of(protocol.VideoItem)) >= 25, timeout_s=30)
        peer.pump(2.0)  # frames and audio keep flowing: the buffers have reached their size
        pss, private = pss_bytes(peer.proc.pid), private_bytes(peer.proc.pid)
    finally:
        peer.stop()
    # Its private memory is what each added stream costs: the libraries' file pages are
    # shared with tandemd, the workers and the other ingest processes, so its PSS tends
    # to it as streams are added (alone beside this test it also carries half of them:
    # 43 MiB PSS on a quiet machine, less where other processes map them too).
    figures = f"ingest process private {private / 2**20:.0f} MiB, PSS {pss / 2**20:.0f} MiB"
    print(figures)
    assert private <= INGEST_PRIVATE_MAX, figures
