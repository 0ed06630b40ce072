"""Fusion: its own cost per fused record, and capture-to-publish latency of live streams.

1. Cost per record: one stream's window (5 frames with the default vision analyzers'
   outputs, 2 audio chunks with the default audio analyzers' outputs) through
   StreamFuser (items, results, window, summaries, the shipped config's event rules, A/V
   sync). Reference: `json.dumps` of the same record, which publishing pays anyway.
2. Latency: a real tandemd with 4 live 360p lavfi streams at 5 fps and the shipped
   built-in analyzers; p50 and p99 of the records' `latency_s` (publish time minus the
   capture time of the window's newest answered item), and the share of frames dropped
   stale. Reference: the same streams with `motion` only.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from bench.core import Row, row
from daemon.config import load_config
from daemon.fusion.fuser import StreamFuser
from daemon.wire.protocol import PROTOCOL_VERSION, Result

ROOT = Path(__file__).resolve().parent.parent
VIDEO_OUT = {
    "motion": {"score": 0.02, "mean_diff": 0.01, "moving": True, "boxes": [[0.1, 0.1, 0.3, 0.4]]},
    "black": {"black": False, "ratio": 0.0, "since": None, "run_s": 0.0, "confirmed": False},
    "frozen": {"frozen": False, "mafd": 0.01, "since": None, "run_s": 0.0, "confirmed": False},
    "faces": {"count": 1, "boxes": [[0.4, 0.2, 0.6, 0.5]]},
    "persons": {"count": 0, "boxes": [], "scores": []},
}
AUDIO_OUT = {
    "level": {"rms_dbfs": -21.0, "peak_dbfs": -18.0},
    "loudness": {
        "momentary_lufs": -20.0,
        "momentary_max_lufs": -19.0,
        "short_term_lufs": -20.5,
        "integrated_lufs": -21.0,
    },
    "silence": {
        "silent": False,
        "silence_s": 0.0,
        "quiet_ratio": 0.0,
        "silence_starts": [],
        "silence_ends": [],
    },
    "clipping": {"clipped_ratio": 0.0, "clipped_samples": 0, "clips": 0, "clipping": False},
    "vad": {
        "speech": True,
        "speech_ratio": 0.8,
        "speech_prob": 0.7,
        "speech_prob_max": 0.9,
        "speech_starts": [],
        "speech_ends": [],
    },
    "mel": {f"band_{i:02d}_db": -30.0 - i for i in range(8)},
}


def _result(modality: str, seq: int, pts: float, outputs: dict[str, Any]) -> Result:
    return Result(
        v=PROTOCOL_VERSION, stream="s", modality=modality, seq=seq, pts=pts,
        wall=time.time(), outputs=outputs, errors={}, infer_s=0.0,
    )  # fmt: skip


def cost_per_record(windows: int) -> tuple[float, float]:
    """(fusion µs per record, json.dumps µs per record)."""
    rules = list(load_config(ROOT / "config.toml").events)
    fuser = StreamFuser("s", {"video", "audio"}, 1.0, 0.5, rules)
    video = [_result("video", n, n / 5, VIDEO_OUT) for n in range(windows * 5)]
    audio = [_result("audio", n, n / 2, AUDIO_OUT) for n in range(windows * 2)]
    records = []
    started = time.perf_counter()
    for w in range(windows):
        for r in video[w * 5 : w * 5 + 5]:
            fuser.on_item("video", r.seq, r.pts, 0.2)
            fuser.on_result(r)
        for r in audio[w * 2 : w * 2 + 2]:
            fuser.on_item("audio", r.seq, r.pts, 0.5)
            fuser.on_result(r)
        records.extend(fuser.due(time.monotonic()))
        fuser.events.take()
    fusion_s = time.perf_counter() - started
    started = time.perf_counter()
    for record in records:
        json.dumps(record, separators=(",", ":"), allow_nan=False)
    dumps_s = time.perf_counter() - started
    return fusion_s / len(records) * 1e6, dumps_s / len(records) * 1e6


def _live_config(tmp: Path, pub: int, vision: list[str]) -> str:
    raw = tomllib.loads((ROOT / "config.toml").read_text())
    streams = "".join(
        f'[[streams]]\nid = "cam{i}"\nformat = "lavfi"\nfps = 5\nwidth = 640\nheight = 360\n'
        f'url = "testsrc2=size=640x360:rate=25[out0];sine=frequency={300 + 100 * i}'
        ':sample_rate=16000[out1]"\n'
        for i in range(4)
    )
    shipped = raw["workers"]["vision"].get("options", {})
    used = {name: opts for name, opts in shipped.items() if name in vision}
    vision_options = f"options = {_inline(used)}\n"
    return (
        f'runtime_dir = "{tmp}/run"\n[log]\ndigest_s = 0\nlevel = "warning"\n{streams}'
        f"[workers.vision]\ncount = 1\nanalyzers = {json.dumps(vision)}\n{vision_options}"
        f'[workers.audio]\ncount = 1\n[publish]\nendpoint = "tcp://127.0.0.1:{pub}"\n'
        "[metrics]\nenabled = false\n"
    )


def _inline(value: Any) -> str:
    """A TOML inline value of nested tables of numbers, booleans and strings."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_inline(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def live_latency(vision: list[str], seconds: float) -> tuple[float, float, float]:
    """(p50 s, p99 s, share of windows partial) of 4 live streams over `seconds`."""
    from daemon.publishing.subscriber import Subscriber
    from tests.conftest import free_port

    with tempfile.TemporaryDirectory() as tmp:
        pub = free_port()
        config = Path(tmp) / "c.toml"
        config.write_text(_live_config(Path(tmp), pub, vision))
        latencies: list[float] = []
        partial = 0
        with Subscriber(f"tcp://127.0.0.1:{pub}", ["fused."]) as sub:
            proc = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli.tandemd", str(config)], cwd=ROOT
            )
            try:
                warmup = time.monotonic() + 5.0
                deadline = time.monotonic() + seconds + 30.0
                first: float | None = None
                while time.monotonic() < deadline:
                    for _, record in sub.records(timeout_s=1.0):
                        if time.monotonic() >= warmup and record["latency_s"] is not None:
                            first = first or time.monotonic()
                            latencies.append(record["latency_s"])
                            partial += bool(record["partial"])
                        break
                    if first is not None and time.monotonic() - first >= seconds:
                        break
            finally:
                proc.terminate()
                proc.wait(20)
    if len(latencies) < 2:
        return float("nan"), float("nan"), float("nan")
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49], cuts[98], partial / len(latencies)


def run(quick: bool) -> list[Row]:
    fusion_us, dumps_us = cost_per_record(200 if quick else 2000)
    rows = [row("fusion cost per record (9 rules, sync)", fusion_us, "µs", "json.dumps", dumps_us)]
    seconds = 20.0 if quick else 60.0
    builtins = load_config(ROOT / "config.toml").workers.vision.analyzers
    p50, p99, partial = live_latency(list(builtins), seconds)
    ref50, ref99, ref_partial = live_latency(["motion"], seconds)
    rows += [
        row("4x360p live p50 capture-to-publish", p50, "s", "motion only", ref50),
        row("4x360p live p99 capture-to-publish", p99, "s", "motion only", ref99),
        row("4x360p live partial windows", partial, "share", "motion only", ref_partial),
    ]
    return rows
