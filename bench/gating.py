"""Motion first (issue 21): tandem against the naive loop (bench/naive.py) on the camera
clips of bench/scenes.py, as frames analysed per second, ratios from the same run.

Each row runs 2 copies of a 720p30 clip as file streams, analysed as fast as they go at
5 fps and 640x360: tandem (a real tandemd subprocess, `mode = "file"`, `pace = "none"`,
config.toml's [workers] tables) against one loop process per copy running the same
vision analyzers inline. Rows:
- "shipped config": config.toml as shipped (its workers, options with faces and
  persons behind the motion gate, its event rules) against the loop with the same
  analyzers, which gates nothing. Goals: at least 3.0 on the still camera, 1.2 on the
  moving picture (a panning camera: the gate's camera motion); the busy clip (a crowd
  everywhere) is the gate's worst case, where only decoding can be saved: a row gives
  the most any pipeline that runs the same analyzers on every frame can reach there, the
  loop's own analysis on frames decoded before its clock starts;
- "gating off": tandem with the given analyzers and no gate against the loop with the
  same ones: the price of tandem's processes and copies once a detector runs. Goal: at
  least 1.0 on every row.
Rates count from the first frame analysed to the last on both sides (start-up, model
loads and process forks excluded: the loop's processes wait at a barrier until all have
built their analyzers, and tandem's results count from when all its workers had
registered, polled on its control socket; until then a worker still loading, such as the
audio worker importing torch, takes CPU from the vision workers' first results).
tandem's rate is the `detections.<stream>` video records its subscriber received. A row
runs the loop and tandem back to back (the machine is shared), in turn which goes first;
the full run repeats each pair 5 times on 40 s clips and keeps the median pair by ratio
(bench.core.median_pair).
`--quick`: 18 s clips, one pair per row (about 5 minutes on 2 cores)."""

from __future__ import annotations

import copy
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bench import naive, scenes
from bench.core import Row, median_pair, row
from bench.live import ROOT, free_port

COPIES = 2
SHIPPED = "shipped"
A = TypeVar("A")
B = TypeVar("B")
# (clip, label, analyzers or SHIPPED for config.toml's set, gated as shipped)
ROWS: list[tuple[str, str, list[str] | str, bool]] = [
    ("moving", "motion", ["motion"], False),
    ("moving", "motion + faces", ["motion", "faces"], False),
    ("moving", "shipped vision set, gating off", SHIPPED, False),
    ("moving", "shipped config (faces, persons gated)", SHIPPED, True),
    ("busy", "shipped config (faces, persons gated)", SHIPPED, True),
    ("still", "motion", ["motion"], False),
    ("still", "motion + faces", ["motion", "faces"], False),
    ("still", "motion + black + frozen", ["motion", "black", "frozen"], False),
    ("still", "shipped vision set, gating off", SHIPPED, False),
    ("still", "shipped config (faces, persons gated)", SHIPPED, True),
]
CLIP_TEXT = {
    "still": "still camera, a person passes for 1/6 of it",
    "moving": "camera panning, a person walking (every pixel changes)",
    "busy": "still camera, a crowd crossing everywhere all the time",
}


def shipped() -> dict[str, Any]:
    with (ROOT / "config.toml").open("rb") as f:
        return tomllib.load(f)


def tandem_config(
    run_dir: Path, path: Path, pub: int, analyzers: list[str] | str, gated: bool
) -> str:
    """config.toml with 2 file streams of `path`; with `gated` as shipped (events too),
    else `analyzers` with their shipped options less the gate, and no event rules."""
    config = copy.deepcopy(shipped())
    vision = config["workers"]["vision"]
    if not gated:
        names = vision["analyzers"] if analyzers == SHIPPED else list(analyzers)
        options = naive.ungated(vision.get("options", {}))
        vision["analyzers"] = names
        vision["options"] = {k: v for k, v in options.items() if k in names}
        config.pop("events", None)
    config["runtime_dir"] = f"{run_dir}/run"
    config["log"] = {"level": "warning", "digest_s": 0}
    config["streams"] = [
        {"id": f"s{i}", "url": str(path), "mode": "file", "pace": "none", "fps": 5.0}
        for i in range(COPIES)
    ]
    config["publish"] = {"endpoint": f"tcp://127.0.0.1:{pub}"}
    config["metrics"] = {"enabled": False}
    return to_toml(config)


def tandem_rate(path: Path, analyzers: list[str] | str, gated: bool) -> tuple[float, float]:
    """(frames analysed per second, share of detector results gated) for 2 copies."""
    from daemon.publishing.subscriber import Subscriber

    pub = free_port()
    with tempfile.TemporaryDirectory(prefix="tandem-bench-gating-") as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(tandem_config(Path(tmp), path, pub, analyzers, gated))
        with Subscriber(f"tcp://127.0.0.1:{pub}", ["detections.", "status."]) as sub:
            proc = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli.tandemd", str(config)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            ready = _WorkersReady(f"ipc://{tmp}/run/control.sock", _workers_configured())
            try:
                return _until_ended(sub, proc, ready)
            finally:
                ready.stop()
                proc.terminate()
                proc.wait(30)


def _workers_configured() -> int:
    workers = shipped()["workers"]
    return sum(
        int(workers[kind].get("count", 1)) for kind in ("vision", "audio") if kind in workers
    )


class _WorkersReady:
    """When every configured worker had registered with tandemd (its control socket's
    status), polled on a thread: the loop's clock starts once its processes have loaded
    their analyzers, and tandem's results count from then too. A worker still loading
    (the audio worker imports torch for seconds) takes CPU from the first results."""

    def __init__(self, endpoint: str, expected: int) -> None:
        self.at: float | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._poll, args=(endpoint, expected), daemon=True)
        self._thread.start()

    def _poll(self, endpoint: str, expected: int) -> None:
        from daemon.control.answers import request

        while not self._stopped.wait(0.1):
            try:
                reply = request(endpoint, {"type": "status"}, timeout_s=1.0)
            except (TimeoutError, OSError):
                continue
            if len(reply.get("workers") or []) >= expected:
                self.at = time.monotonic()
                return

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)


def _until_ended(
    sub: Any, proc: subprocess.Popen[bytes], ready: _WorkersReady
) -> tuple[float, float]:
    ended: set[str] = set()
    times: list[float] = []
    results = gated = 0
    deadline = time.monotonic() + 900
    while len(ended) < COPIES:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"tandemd: only {len(ended)}/{COPIES} streams ended")
        for _, record in sub.records(timeout_s=0.5):
            kind = record.get("type")
            if kind == "status" and record.get("state") == "ended":
                ended.add(record["stream"])
            elif kind == "detections" and record.get("modality") == "video":
                times.append(time.monotonic())
                for name in ("faces", "persons"):
                    outputs = record["outputs"].get(name)
                    if outputs is not None:
                        results += 1
                        gated += outputs.get("gated") is True
    if ready.at is None:
        raise RuntimeError("tandemd: its workers never all registered")
    times = [t for t in times if t >= ready.at]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    rate = (len(times) - 1) / span if span > 0 else float("nan")
    return rate, (gated / results if results else 0.0)


def to_toml(config: dict[str, Any]) -> str:
    """A config dict as TOML: tables and arrays of tables, values inline."""
    lines = [f"{k} = {_value(v)}" for k, v in config.items() if not _table(v)]
    for key, value in config.items():
        if isinstance(value, list) and _table(value):
            for table in value:
                lines += [f"[[{key}]]", *(f"{k} = {_value(v)}" for k, v in table.items())]
        elif isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
            for sub, table in value.items():
                lines += [f"[{key}.{sub}]", *(f"{k} = {_value(v)}" for k, v in table.items())]
        elif isinstance(value, dict):
            lines += [f"[{key}]", *(f"{k} = {_value(v)}" for k, v in value.items())]
    return "\n".join(lines) + "\n"


def _table(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, dict) for v in value)
    return isinstance(value, dict)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def measure(
    kind: str, analyzers: list[str] | str, gated: bool, pairs: int, seconds: float
) -> tuple[float, float, float]:
    """The median (loop, tandem) pair by ratio, and tandem's gated share in it."""
    path = scenes.clip(kind, seconds)
    vision = shipped()["workers"]["vision"]
    names = vision["analyzers"] if analyzers == SHIPPED else list(analyzers)
    options = {k: v for k, v in vision.get("options", {}).items() if k in names}
    runs = []
    for i in range(pairs):
        ref, (ours, share) = in_turn(
            i,
            lambda: naive.loop_rate(str(path), COPIES, names, options),
            lambda: tandem_rate(path, analyzers, gated),
        )
        print(
            f"bench gating: {kind} {analyzers if analyzers != SHIPPED else 'shipped'}"
            f"{' gated' if gated else ''}: loop {ref:.1f}, tandem {ours:.1f} frames/s "
            f"(faces/persons gated {share:.0%})",
            file=sys.stderr,
            flush=True,
        )
        runs.append((ref, ours, share))
    ref, ours = median_pair([(r, o) for r, o, _ in runs])
    share = next(s for r, o, s in runs if (r, o) == (ref, ours))
    return ref, ours, share


def bound(kind: str, pairs: int, seconds: float) -> tuple[float, float]:
    """The median (loop, loop on frames decoded beforehand) pair, shipped analyzers."""
    path = scenes.clip(kind, seconds)
    vision = shipped()["workers"]["vision"]
    names = vision["analyzers"]
    options = {k: v for k, v in vision.get("options", {}).items() if k in names}
    runs = []
    for i in range(pairs):
        ref, alone = in_turn(
            i,
            lambda: naive.loop_rate(str(path), COPIES, names, options),
            lambda: naive.loop_rate(str(path), COPIES, names, options, decoded=True),
        )
        print(
            f"bench gating: {kind} bound: loop {ref:.1f}, its analysis alone {alone:.1f} frames/s",
            file=sys.stderr,
            flush=True,
        )
        runs.append((ref, alone))
    return median_pair(runs)


def in_turn(i: int, first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """Pair i of a row: the two sides back to back, the loop first in even pairs and last
    in odd ones, so that the machine's drift over a pair (its other tenants come and go
    over minutes) favours neither side across the pairs."""
    if i % 2 == 0:
        a = first()
        return a, second()
    b = second()
    return first(), b


def run(quick: bool) -> list[Row]:
    seconds, pairs = (18.0, 1) if quick else (40.0, 5)
    rows = []
    ref, alone = bound("busy", pairs, seconds)
    rows.append(
        row(
            f"gating {CLIP_TEXT['busy']}: the most any pipeline that runs the shipped vision"
            " set on every frame can reach (the loop's analysis alone, frames decoded before)",
            alone,
            "frames/s",
            "naive cv2 loop per stream, same analyzers inline, no gate",
            ref,
        )
    )
    for kind, label, analyzers, gated in ROWS:
        ref, ours, share = measure(kind, analyzers, gated, pairs, seconds)
        note = f", {share:.0%} of detector results gated" if gated else ""
        rows.append(
            row(
                f"gating {CLIP_TEXT[kind]}, 2x720p30 files at 5 fps: {label}{note}",
                ours,
                "frames/s",
                "naive cv2 loop per stream, same analyzers inline, no gate",
                ref,
            )
        )
    return rows
