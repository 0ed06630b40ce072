"""`python -m bench [--quick] [--only SECTION]`: run the benchmarks, print one Markdown
table, write bench/results/latest.json. Not tests: nothing here runs in CI."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

from bench.core import Row, markdown

# section name -> module under bench/ with `run(quick: bool) -> list[Row]`
SECTIONS = {
    "ingest": "bench.ingest",
    "transport": "bench.transport",
    "audio": "bench.audio",
    "vision": "bench.vision",
    "e2e": "bench.e2e",
    "fusion": "bench.fusion",
    "detail": "bench.detail",
    "gating": "bench.gating",
    "baseline": "bench.baseline",
    "gpu": "bench.gpu",
    "memory": "bench.memory",
}
RESULTS = Path(__file__).parent / "results" / "latest.json"


def machine() -> str:
    """Where the figures come from: CPU model, cores, memory, GPU."""
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages / 2**30:.0f} GiB"
    except (OSError, ValueError):
        memory = "? GiB"
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:
        gpu = "no torch"
    return f"{platform.node()}: {cpu}, {os.cpu_count()} cores, {memory}, {gpu}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs (< 5 min)")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    for name in args.only or list(SECTIONS):
        try:
            module = importlib.import_module(SECTIONS[name])
        except ModuleNotFoundError as exc:
            if exc.name != SECTIONS[name]:
                raise
            print(f"bench: section {name} is not written yet", file=sys.stderr)
            continue
        print(f"bench: {name}...", file=sys.stderr, flush=True)
        rows.extend(module.run(quick=args.quick))
    print(f"{machine()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(markdown(rows))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps([r.as_dict() for r in rows], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
