"""The cost of results detail: tandemd's CPU with per-item detections published and every
stream's motion boxes tracked through a zone and a line, against the same run with fused
records alone (detections off, nothing tracked), on 8 file streams of the same 360p clip.

Both sides run the same workers on the same items (files lose nothing), so the workers'
CPU is the same; the cost lives in tandemd: encoding and sending a record per item, the
tracker, zones and lines. Measured as tandemd's own CPU seconds (utime + stime of its
process) from start to every stream's end, with a subscriber taking every topic (so
the records are really sent), in back-to-back pairs; the row is the median pair's ratio.
Goal (issue 17): under 1.10.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.core import Row, row
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


def tandemd_cpu_s(path: Path, stream_keys: str) -> float:
    """tandemd's CPU seconds for the whole run of the 8 files."""
    from daemon.publishing.subscriber import Subscriber

    pub = free_port()
    with tempfile.TemporaryDirectory(prefix="tandem-bench-detail-") as tmp:
        (Path(tmp) / "config.toml").write_text(config(Path(tmp), path, pub, stream_keys))
        with Subscriber(f"tcp://127.0.0.1:{pub}", [""]) as sub:
            proc = subprocess.Popen(
                [sys.executable, "-m", "daemon.main", str(Path(tmp) / "config.toml")],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                _until_every_stream_ended(sub, proc)
                return _cpu_s(proc.pid)
            finally:
                proc.terminate()
                proc.wait(30)


def _until_every_stream_ended(sub: object, proc: subprocess.Popen[bytes]) -> None:
    ended: set[str] = set()
    deadline = time.monotonic() + 600
    while len(ended) < STREAMS:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"tandemd: only {len(ended)}/{STREAMS} streams ended")
        for _, record in sub.records(timeout_s=0.5):  # type: ignore[attr-defined]
            if record.get("type") == "status" and record.get("state") == "ended":
                ended.add(record["stream"])


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def run(quick: bool) -> list[Row]:
    path = clip("360p", 10.0 if quick else 30.0)
    pairs = []
    for _ in range(3 if quick else 5):
        plain = tandemd_cpu_s(path, PLAIN)
        detail = tandemd_cpu_s(path, DETAIL)
        print(f"bench detail: plain {plain:.2f} s, detail {detail:.2f} s CPU", file=sys.stderr)
        pairs.append((plain, detail))
    plain, detail = sorted(pairs, key=lambda p: p[1] / p[0])[len(pairs) // 2]
    return [
        row(
            f"tandemd CPU, {STREAMS} file streams 360p: detections + tracking / fused alone",
            detail,
            "s CPU",
            "tandemd CPU with fused records alone (same items)",
            plain,
        )
    ]
