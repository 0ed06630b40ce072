"""Memory: the whole service's proportional set size (PSS) at 1, 8 and 32 live lavfi
360p streams, and what each added stream costs.

Each point is a real tandemd subprocess with config.toml's [workers] (two vision workers
with motion, black, frozen, faces and persons, one audio worker with the seven audio
built-ins, their options as shipped) and N copies of the shipped test stream (FFmpeg's
testsrc2 at 640x360 and 30 fps with a 48 kHz sine, analysed at 5 fps), measured once
every stream has published a fused record and the service has run on for a while. PSS
is read from /proc/<pid>/smaps_rollup of tandemd and every process under it and summed:
pages shared by several processes (the interpreter, NumPy, OpenCV) count once in the sum,
split among them. The rows also give each kind of process's share; the reference of the
8- and 32-stream rows is the 1-stream service, so their ratio is how much more the
service holds.

The workers cannot analyse 32 streams at 5 fps on a small machine: the overload policy
lowers the analysis rate. What is measured is the memory it takes to hold them.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bench.core import Row, row
from bench.live import Setup, Tandemd

STREAMS = (1, 8, 32)
QUICK_STREAMS = (1, 8)
SOURCE = "testsrc2=size=640x360:rate=30[out0];sine=frequency=440:sample_rate=48000[out1]"


@dataclass
class LavfiSetup(Setup):
    """N copies of the shipped lavfi test stream, config.toml's workers."""

    def stream_tables(self) -> dict[str, list[str]]:
        keys = [f'url = "{SOURCE}"', 'format = "lavfi"', 'mode = "live"', "fps = 5.0"]
        keys += ["width = 640", "height = 360"]
        return {sid: keys for sid in self.streams}


def pss_kib(pid: int) -> int:
    """The process's PSS in KiB (0 once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:")), 0)


def descendants(pid: int) -> list[int]:
    """Every process under `pid`, children first."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry.name))
    out, todo = [], list(children[pid])
    while todo:
        child = todo.pop()
        out.append(child)
        todo.extend(children[child])
    return out


def kind_of(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "gone"
    if b"daemon.ingest" in argv:
        return "ingest"
    if b"daemon.workers" in argv:
        return "vision worker" if b"vision" in argv else "audio worker"
    return "other"


@dataclass(frozen=True)
class Sample:
    total_mib: float
    by_kind: dict[str, tuple[int, float]]  # kind -> (processes, MiB in all)


def sample(daemon: Tandemd) -> Sample:
    by_kind: dict[str, list[int]] = defaultdict(list)
    by_kind["tandemd"].append(pss_kib(daemon.proc.pid))
    for pid in descendants(daemon.proc.pid):
        by_kind[kind_of(pid)].append(pss_kib(pid))
    kinds = {k: (len(v), sum(v) / 1024) for k, v in by_kind.items() if k != "gone"}
    return Sample(sum(mib for _, mib in kinds.values()), kinds)


def measure(n: int, settle_s: float) -> Sample:
    """The service's PSS with n streams, once all are up and it ran `settle_s` more: the
    largest of a few samples a second apart (PSS grows to a plateau, then stays)."""
    from daemon.publishing.subscriber import Subscriber

    with tempfile.TemporaryDirectory(prefix="tandem-bench-memory-") as tmp:
        setup = LavfiSetup({f"s{i}": Path("lavfi") for i in range(n)}, Path(tmp))
        with Subscriber(f"tcp://127.0.0.1:{setup.pub_port}", ["fused."]) as sub:
            daemon = Tandemd(setup)
            try:
                seen: set[str] = set()
                deadline = time.monotonic() + 60.0 + 3.0 * n
                while len(seen) < n and time.monotonic() < deadline:
                    for _, record in sub.records(timeout_s=0.5):
                        seen.add(record["stream"])
                        break
                if len(seen) < n:
                    print(f"bench:   only {len(seen)}/{n} streams up", file=sys.stderr)
                until = time.monotonic() + settle_s
                samples = []
                while time.monotonic() < until:
                    for _ in sub.records(timeout_s=0.2):  # keep the subscriber drained
                        pass
                    samples.append(sample(daemon))
                    time.sleep(1.0)
                return max(samples, key=lambda s: s.total_mib)
            finally:
                daemon.stop()


def describe(s: Sample) -> str:
    return ", ".join(
        f"{kind} {mib:.0f} MiB" + (f" ({count} x {mib / count:.0f})" if count > 1 else "")
        for kind, (count, mib) in sorted(s.by_kind.items())
    )


def run(quick: bool) -> list[Row]:
    counts = QUICK_STREAMS if quick else STREAMS
    settle_s = 10.0 if quick else 30.0
    points: dict[int, Sample] = {}
    for n in counts:
        points[n] = measure(n, settle_s)
        print(f"bench:   {n} streams: {points[n].total_mib:.0f} MiB PSS: {describe(points[n])}",
              file=sys.stderr, flush=True)  # fmt: skip
    first = points[counts[0]]
    rows = [
        row(
            f"memory: whole service PSS at {n} lavfi 360p stream{'s' if n > 1 else ''}, "
            f"shipped workers ({describe(s)})",
            s.total_mib,
            "MiB",
            f"the same service at {counts[0]} stream",
            first.total_mib,
        )
        for n, s in points.items()
    ]
    last_n = counts[-1]
    per_stream = (points[last_n].total_mib - first.total_mib) / (last_n - counts[0])
    ingest_count, ingest_mib = points[last_n].by_kind.get("ingest", (1, 0.0))
    rows.append(
        row(
            f"memory: PSS per added stream, {counts[0]} to {last_n} streams",
            per_stream,
            "MiB",
            f"one ingest process's PSS at {last_n} streams (mean)",
            ingest_mib / max(1, ingest_count),
        )
    )
    return rows
