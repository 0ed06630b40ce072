"""The cost of results detail: tandemd's CPU with per-item detections published and every
stream's motion boxes tracked through a zone and a line, against the same run with fused
records alone (detections off, nothing tracked), on 8 file streams of the same 360p clip.

Both sides run the same workers on the same items (files lose nothing), so the workers'
work is the same; the extra lives in tandemd: encoding and sending a record per item, the
tracker, zones and lines. Measured as tandemd's CPU time in the steady state, from the
first fused record to every stream's end (start-up, the same on both sides and most of a
short run, is left out), summed over its threads from /proc/<pid>/task/*/schedstat
(nanoseconds; utime + stime count 10 ms ticks), with a subscriber taking every topic (so
the records are really sent), in back-to-back pairs; the row is the median pair's ratio.
The whole process tree's CPU (workers and ingest too) is printed per pair as well: the
workers' own variation between runs is larger than the whole cost measured here.
Goal (issue 17): under 1.10.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.core import Row, median_pair, row
from bench.live import clip, free_port

STREAMS = 8
ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")

DETAIL = """detections = true
track = ["motion"]
zones = [{name = "left", polygon = [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}]
lines = [{name = "middle", a = [0.5, 0], b = [0.5, 1]}]"""
PLAIN = """detections = false
track = []"""


def config(run_dir: Path, path: Path, pub: int, stream_keys: str) -> str:
    streams = "\n".join(
        f'[[streams]]\nid = "s{i}"\nurl = "{path}"\nmode = "file"\nfps = 5\n{stream_keys}'
        for i in range(STREAMS)
    )
    return f"""runtime_dir = "{run_dir}/run"
[log]
digest_s = 0
level = "warning"
{streams}
[workers.vision]
count = 1
analyzers = ["motion"]
[workers.audio]
count = 1
analyzers = ["level"]
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
enabled = false
[snapshots]
enabled = false
"""


@dataclass(frozen=True)
class Cpu:
    """CPU seconds in the steady state: tandemd's own, and its whole process tree's
    (clock ticks); and tandemd's from its start, start-up included."""

    tandemd: float
    tree: float
    from_start: float


def steady_cpu(path: Path, stream_keys: str) -> Cpu:
    """CPU from the first fused record (start-up done) to the end of the 8 files."""
    from daemon.publishing.subscriber import Subscriber

    pub = free_port()
    with tempfile.TemporaryDirectory(prefix="tandem-bench-detail-") as tmp:
        (Path(tmp) / "config.toml").write_text(config(Path(tmp), path, pub, stream_keys))
        with Subscriber(f"tcp://127.0.0.1:{pub}", [""]) as sub:
            proc = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli.tandemd", str(Path(tmp) / "config.toml")],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                first = _at_first_fused(sub, proc)
                _until_every_stream_ended(sub, proc)
                last = _cpu_s(proc.pid), _tree_cpu_s(proc.pid)
                return Cpu(last[0] - first[0], last[1] - first[1], last[0])
            finally:
                proc.terminate()
                proc.wait(30)


def _at_first_fused(sub: object, proc: subprocess.Popen[bytes]) -> tuple[float, float]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        for _, record in sub.records(timeout_s=0.05):  # type: ignore[attr-defined]
            if record.get("type") == "fused":
                return _cpu_s(proc.pid), _tree_cpu_s(proc.pid)
            if record.get("type") == "status" and record.get("state") == "ended":
                raise RuntimeError("a stream ended before any fused record: clip too short")
    raise RuntimeError("tandemd: no fused record")


def _until_every_stream_ended(sub: object, proc: subprocess.Popen[bytes]) -> None:
    ended: set[str] = set()
    deadline = time.monotonic() + 600
    while len(ended) < STREAMS:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"tandemd: only {len(ended)}/{STREAMS} streams ended")
        for _, record in sub.records(timeout_s=0.5):  # type: ignore[attr-defined]
            if record.get("type") == "status" and record.get("state") == "ended":
                ended.add(record["stream"])


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_s(pid: int) -> float:
    """The process's time on a CPU, its threads' together."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])  # ns on a CPU
        except FileNotFoundError:
            continue  # a thread that ended meanwhile
    return total / 1e9


def _tree_cpu_s(root: int) -> float:
    """utime + stime of `root` and every live descendant, and cutime + cstime: the
    children each of them already reaped (tandemd's ended ingest processes)."""
    parents: dict[int, int] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue  # exited meanwhile
            parents[int(entry.name)] = int(fields[1])
            stats[int(entry.name)] = fields
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(sum(int(f) for f in stats[pid][11:15]) for pid in tree if pid in stats) / TICKS


def run(quick: bool) -> list[Row]:
    path = clip("360p", 20.0 if quick else 30.0)
    pairs = []
    for _ in range(3 if quick else 5):
        plain = steady_cpu(path, PLAIN)
        detail = steady_cpu(path, DETAIL)
        print(
            f"bench detail: tandemd plain {plain.tandemd:.3f} s, detail {detail.tandemd:.3f} s"
            f" ({detail.tandemd / plain.tandemd:.3f}); from start {plain.from_start:.2f} s,"
            f" {detail.from_start:.2f} s ({detail.from_start / plain.from_start:.3f});"
            f" whole tree {plain.tree:.2f} s, {detail.tree:.2f} s ({detail.tree / plain.tree:.3f})",
            file=sys.stderr,
        )
        pairs.append((plain, detail))
    plain, detail = median_pair([(p.tandemd, d.tandemd) for p, d in pairs])
    return [
        row(
            f"tandemd CPU, {STREAMS} file streams 360p, steady state:"
            " detections + tracking / fused alone",
            detail,
            "s CPU",
            "tandemd CPU with fused records alone (same items)",
            plain,
        )
    ]
