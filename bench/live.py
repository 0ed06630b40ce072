"""Shared by the end-to-end, baseline and soak benchmarks: live-paced H.264 + AAC clips,
a real tandemd subprocess on a generated config, /metrics scrapes, and the stream-count
search.

Why pre-encoded H.264 files served at the source's own rate (`pace = "realtime"`,
`mode = "live"`) rather than lavfi test sources: a camera delivers compressed H.264, so
the decode cost per stream is real (lavfi hands over raw frames and instead costs the
pattern generation, which no camera needs); the clip has no B-frames and a 1 s GOP, like
most IP cameras; and the same file is what the cv2 baseline reads, so both sides do the
same decode work.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import children_of, free_port  # the tests' own: one copy of each

ROOT = Path(__file__).resolve().parent.parent
RESOLUTIONS = {"360p": (640, 360), "720p": (1280, 720)}
SOURCE_FPS = 30
ANALYSIS_FPS = 5.0  # the default config's `fps`
LATENCY_BUDGET_S = 1.0


@dataclass(frozen=True)
class Plan:
    warmup_s: float
    measure_s: float
    budget_s: float  # per stream-count search
    half_measure_s: float
    clip_s: float  # longer than any trial: a live source never reaches its end while measured


QUICK = Plan(warmup_s=3.0, measure_s=5.0, budget_s=35.0, half_measure_s=6.0, clip_s=30.0)
# The full run searches until each side has failed (its real capacity, up to the cap);
# the quick one stops at its budget and says "at least N" for a side that never failed.
FULL = Plan(warmup_s=5.0, measure_s=12.0, budget_s=float("inf"), half_measure_s=20.0, clip_s=60.0)


def plan(quick: bool) -> Plan:
    return QUICK if quick else FULL


_tmp = tempfile.TemporaryDirectory(prefix="tandem-bench-live-")
_clips: dict[tuple[str, float], Path] = {}


def clip(resolution: str, seconds: float) -> Path:
    """An H.264 (ultrafast, GOP 30, no B-frames) + AAC clip, encoded once per process."""
    key = (resolution, seconds)
    if key not in _clips:
        from tests.support.media import encode_clip

        width, height = RESOLUTIONS[resolution]
        path = Path(_tmp.name) / f"{resolution}-{seconds:g}s.mp4"
        _clips[key] = encode_clip(path, seconds=seconds, width=width, height=height, fps=30)
    return _clips[key]


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of every sample of `name` whose labels include `labels`."""
    return sum(
        v
        for (n, lab), v in samples.items()
        if n == name and all(dict(lab).get(k) == w for k, w in labels.items())
    )


def default_workers() -> dict[str, Any]:
    """The [workers] tables of the embedded default config.toml: the default analyzers."""
    with (ROOT / "config.toml").open("rb") as f:
        workers: dict[str, Any] = tomllib.load(f)["workers"]
    return workers


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


@dataclass
class Setup:
    streams: dict[str, Path]  # stream id -> file served live at its own rate
    run_dir: Path
    pub_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    extra_stream_keys: str = ""

    def config(self) -> str:
        lines = [f'runtime_dir = "{self.run_dir}/run"', "[log]", "digest_s = 0"]
        for sid, keys in self.stream_tables().items():
            lines += ["[[streams]]", f'id = "{sid}"', *keys]
        return "\n".join(lines + self.workers_and_outputs()) + "\n"

    def stream_tables(self) -> dict[str, list[str]]:
        """Each stream's keys but its id: a file served live at its own rate."""
        return {
            sid: [
                f'url = "{path}"',
                'mode = "live"',
                'pace = "realtime"',
                f"fps = {ANALYSIS_FPS}",
                "width = 640",
                "height = 360",
                self.extra_stream_keys,
            ]
            for sid, path in self.streams.items()
        }

    def workers_and_outputs(self) -> list[str]:
        """The config.toml worker tables (analyzer options too), and results and metrics
        on this setup's ports."""
        lines = []
        for kind, table in default_workers().items():
            lines.append(f"[workers.{kind}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
        return [
            *lines,
            "[publish]",
            f'endpoint = "tcp://127.0.0.1:{self.pub_port}"',
            "[metrics]",
            f"port = {self.metrics_port}",
        ]


class Tandemd:
    """tandemd in a subprocess on a generated config; stop() ends it and its children."""

    def __init__(self, setup: Setup) -> None:
        setup.run_dir.mkdir(parents=True, exist_ok=True)
        path = setup.run_dir / "config.toml"
        path.write_text(setup.config())
        self.setup = setup
        self.log_path = setup.run_dir / "tandemd.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli.tandemd", str(path)],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def scrape(self) -> Samples | None:
        try:
            return scrape(self.setup.metrics_port)
        except (urllib.error.URLError, ConnectionError, OSError):
            return None

    def stop(self) -> None:
        children = children_of(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._log.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass
class Trial:
    streams: int
    held: bool
    p50: float
    p99: float
    why: str


class Search:
    """The most streams held: doubling from `start`, then bisection to within 1/8."""

    def __init__(self, name: str, trial: Callable[[int], Trial], start: int, cap: int) -> None:
        self.name, self.trial, self.start, self.cap = name, trial, start, cap
        self.lo = self.hi = 0  # most held so far; fewest failed so far (0: none yet)

    def next(self) -> int | None:
        if not self.hi:
            n = self.lo * 2 if self.lo else self.start
            return n if n <= self.cap else None
        if self.hi - self.lo > max(1, self.lo // 8):
            return (self.lo + self.hi) // 2
        return None

    def step(self) -> None:
        n = self.next()
        assert n is not None
        t = self.trial(n)
        verdict = "held" if t.held else "NOT held"
        print(f"bench:   {self.name} {n} streams: {verdict} ({t.why})", file=sys.stderr, flush=True)
        if t.held:
            self.lo = n
        else:
            self.hi = n


def interleaved(searches: list[Search], budget_s: float) -> None:
    """Step the searches in turn, one trial each, while `budget_s` lasts: every side is
    measured under the same background load (this machine is shared)."""
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        pending = [s for s in searches if s.next() is not None]
        if not pending:
            return
        for s in pending:
            if time.monotonic() < deadline:
                s.step()
