"""Soak: `python -m bench.soak [--minutes 30]` (not in CI, not part of `python -m bench`).

Four live 360p30 H.264 + AAC streams over UDP (MPEG-TS from Debian's ffmpeg, `-re`,
looping one clip with `-c copy`: a network camera's stream, cheap to send), one tandemd
with the default analyzers. Every `--source-every` seconds (120) one sender is killed and
restarted after `--outage` seconds (longer than the stream's read timeout, so the source
must reconnect); every `--worker-every` seconds (300) a worker process is SIGKILLed,
alternately vision and audio (tandemd restarts it).

Verdicts, printed as a table:
- RSS of tandemd, the vision worker and the audio worker flat after warm-up: the median
  of the last window within 5% of the median of the first window after warm-up (worker
  samples within 30 s of that worker's restart are left out);
- every frame analysed or counted: after the senders stop and the queues drain,
  sampled video frames == vision results + dropped + lost + discarded, and audio chunks
  likewise;
- every reconnect counted: each stream's tandem_reconnects_total grew at least by the
  number of times its sender was killed, and tandem_worker_deaths_total by the number of
  workers killed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.live import (
    Samples,
    Tandemd,
    children_of,
    clip,
    free_port,
    scrape,
    total,
)
from bench.live import Setup as _Setup

STREAMS = 4
SAMPLE_EVERY_S = 5.0


class Setup(_Setup):
    """UDP MPEG-TS sources instead of files."""

    def __init__(self, ports: dict[str, int], run_dir: Path) -> None:
        super().__init__({}, run_dir)
        self.ports = ports

    def stream_tables(self) -> dict[str, list[str]]:
        return {
            sid: [
                f'url = "udp://127.0.0.1:{port}?localaddr=127.0.0.1"',
                'format = "mpegts"',
                'mode = "live"',
                "fps = 5.0",
                "width = 640",
                "height = 360",
                "open_timeout_s = 3.0",
                "read_timeout_s = 2.0",
                "stall_timeout_s = 1.0",
                "reconnect_min_s = 0.5",
                "reconnect_max_s = 2.0",
            ]
            for sid, port in self.ports.items()
        }


def sender(path: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *("ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1"),
            *("-i", str(path), "-c", "copy", "-f", "mpegts"),
            f"udp://127.0.0.1:{port}?pkt_size=1316",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def role(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"
    if "daemon.workers" in cmd:
        return "vision" if "--kind vision" in cmd else "audio"
    return "ingest" if "daemon.ingest" in cmd else "?"


def workers(tandemd_pid: int) -> dict[str, int]:
    return {role(p): p for p in children_of(tandemd_pid) if role(p) in ("vision", "audio")}


def growth(samples: list[tuple[float, int]], warmup_s: float, window_s: float) -> float:
    """Median of the last window over median of the first window after warm-up, - 1."""

    def median(xs: list[int]) -> float:
        xs = sorted(xs)
        return float(xs[len(xs) // 2]) if xs else float("nan")

    end = samples[-1][0] if samples else 0.0
    first = [v for t, v in samples if warmup_s <= t < warmup_s + window_s]
    last = [v for t, v in samples if t >= end - window_s]
    return median(last) / median(first) - 1


def accounting(m: Samples) -> dict[str, float]:
    video = total(m, "tandem_frames_sampled_total") - (
        total(m, "tandem_results_total", kind="vision")
        + total(m, "tandem_frames_dropped_total", modality="video")
        + total(m, "tandem_items_lost_total", modality="video")
        + total(m, "tandem_results_discarded_total", kind="vision")
    )
    audio = total(m, "tandem_audio_chunks_total") - (
        total(m, "tandem_results_total", kind="audio")
        + total(m, "tandem_frames_dropped_total", modality="audio")
        + total(m, "tandem_items_lost_total", modality="audio")
        + total(m, "tandem_results_discarded_total", kind="audio")
    )
    return {"video": video, "audio": audio}


class Soak:
    """One soak run: the senders, tandemd, the fault schedule and the RSS samples."""

    def __init__(self, args: argparse.Namespace, path: Path, setup: Setup) -> None:
        self.args, self.path, self.ports = args, path, setup.ports
        self.senders = {sid: sender(path, port) for sid, port in self.ports.items()}
        self.daemon = Tandemd(setup)
        self.rss: dict[str, list[tuple[float, int]]] = {"tandemd": [], "vision": [], "audio": []}
        self.restarted: dict[str, float] = {}
        self.source_kills = dict.fromkeys(self.ports, 0)
        self.worker_kills = 0
        self.outage: tuple[str, float] | None = None
        self.next_source, self.next_worker, self.next_sample = (
            args.source_every,
            args.worker_every,
            0.0,
        )

    def tick(self, now: float) -> None:
        if self.outage and now >= self.outage[1]:
            sid = self.outage[0]
            self.senders[sid] = sender(self.path, self.ports[sid])
            print(f"soak: {now:6.0f} s: {sid} back", file=sys.stderr)
            self.outage = None
        if now >= self.next_source:
            sid = list(self.ports)[sum(self.source_kills.values()) % STREAMS]
            stop(self.senders[sid])
            self.source_kills[sid] += 1
            self.outage = (sid, now + self.args.outage)
            self.next_source += self.args.source_every
            print(f"soak: {now:6.0f} s: killed source {sid}", file=sys.stderr)
        if now >= self.next_worker:
            kind = ("vision", "audio")[self.worker_kills % 2]
            pid = workers(self.daemon.proc.pid).get(kind)
            if pid:
                os.kill(pid, signal.SIGKILL)
                self.worker_kills += 1
                self.restarted[kind] = now
                print(f"soak: {now:6.0f} s: killed {kind} worker {pid}", file=sys.stderr)
            self.next_worker += self.args.worker_every
        if now >= self.next_sample:
            self.rss["tandemd"].append((now, rss_kib(self.daemon.proc.pid)))
            for kind, pid in workers(self.daemon.proc.pid).items():
                if now - self.restarted.get(kind, -1e9) > 30:
                    self.rss[kind].append((now, rss_kib(pid)))
            self.next_sample += SAMPLE_EVERY_S

    def drain(self) -> Samples:
        """Stop the senders; wait for queues and in-flight to empty, then one more stats
        round from the ingest processes."""
        for proc in self.senders.values():
            stop(proc)
        port = self.daemon.setup.metrics_port
        until = time.monotonic() + 20
        while time.monotonic() < until:
            m = scrape(port)
            if total(m, "tandem_items_queued") == 0 and total(m, "tandem_items_inflight") == 0:
                break
            time.sleep(0.5)
        time.sleep(3)
        return scrape(port)

    def close(self) -> None:
        self.daemon.stop()
        for proc in self.senders.values():
            stop(proc)


def verdicts(
    soak: Soak, warmup: float, window: float, m0: Samples, m_run: Samples, m_end: Samples
) -> list[tuple[str, str, bool]]:
    out: list[tuple[str, str, bool]] = []
    for name, samples in soak.rss.items():
        g = growth(samples, warmup, window)
        first = samples[0][1] / 1024 if samples else 0
        last = samples[-1][1] / 1024 if samples else 0
        out.append(
            (
                f"RSS {name} growth after {warmup:.0f} s warm-up ({len(samples)} samples, "
                f"first {first:.0f} MiB, last {last:.0f} MiB)",
                f"{g * 100:+.1f}%",
                g < 0.05,
            )
        )
    acc = accounting(m_end)
    sampled = total(m_end, "tandem_frames_sampled_total")
    chunks = total(m_end, "tandem_audio_chunks_total")
    dropped = total(m_end, "tandem_frames_dropped_total")
    lost = total(m_end, "tandem_items_lost_total")
    out.append(
        (
            f"video frames sampled {sampled:.0f}, neither analysed nor counted "
            f"(counted: dropped {dropped:.0f}, lost {lost:.0f}, both modalities)",
            f"{acc['video']:.0f}",
            acc["video"] == 0,
        )
    )
    out.append(
        (
            f"audio chunks {chunks:.0f}, neither analysed nor counted",
            f"{acc['audio']:.0f}",
            acc["audio"] == 0,
        )
    )
    for sid, n in soak.source_kills.items():
        name = "tandem_reconnects_total"
        got = total(m_run, name, stream=sid) - total(m0, name, stream=sid)
        out.append((f"{sid}: sender killed {n}x, reconnects counted", f"{got:.0f}", got >= n))
    name = "tandem_worker_deaths_total"
    deaths = total(m_end, name) - total(m0, name)
    out.append(
        (
            f"workers killed {soak.worker_kills}x, worker deaths counted",
            f"{deaths:.0f}",
            deaths >= soak.worker_kills,
        )
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--source-every", type=float, default=120.0, help="seconds")
    parser.add_argument("--worker-every", type=float, default=300.0, help="seconds")
    parser.add_argument("--outage", type=float, default=6.0, help="seconds a source is down")
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds; 0: 1/6 of the run")
    args = parser.parse_args(argv)
    duration = args.minutes * 60
    warmup = args.warmup or duration / 6
    window = max(30.0, (duration - warmup) / 5)
    path = clip("360p", 20.0)
    with tempfile.TemporaryDirectory(prefix="tandem-soak-") as tmp:
        ports = {f"cam{i}": free_port() for i in range(STREAMS)}
        soak = Soak(args, path, Setup(ports, Path(tmp)))
        try:
            time.sleep(10)  # processes start, models load
            start = time.monotonic()
            m0 = scrape(soak.daemon.setup.metrics_port)
            while (now := time.monotonic() - start) < duration:
                if soak.daemon.proc.poll() is not None:
                    print("soak: tandemd exited", file=sys.stderr)
                    return 1
                soak.tick(now)
                time.sleep(0.5)
            if soak.outage:
                soak.tick(soak.outage[1])
            m_run = scrape(soak.daemon.setup.metrics_port)
            m_end = soak.drain()
        finally:
            soak.close()
    elapsed = time.monotonic() - start
    checks = verdicts(soak, warmup, window, m0, m_run, m_end)
    print(f"soak: {args.minutes:g} min ({elapsed:.0f} s after start-up), {STREAMS} x 360p30 UDP")
    print("| check | value | verdict |\n|---|---|---|")
    for what, value, ok in checks:
        print(f"| {what} | {value} | {'pass' if ok else 'FAIL'} |")
    return 0 if all(ok for _, _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
