"""A worker process: `tandem worker --kind vision --endpoint ENDPOINT` (or `python -m
daemon.workers ...` as tandemd starts its local ones)."""

from __future__ import annotations

import argparse
import json
import logging
import warnings

from daemon.lifeline import die_with_parent
from daemon.logs import setup_logging


def build_parser(prog: str = "tandem worker") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Run one tandem worker process.")
    p.add_argument("--kind", choices=["vision", "audio"], required=True)
    p.add_argument("--endpoint", required=True, help="tandemd's dispatch endpoint")
    p.add_argument("--capacity", type=int, default=4, help="items held at once")
    p.add_argument("--analyzers", default="", help="comma-separated; default per kind")
    p.add_argument("--options", default="{}", help="JSON: analyzer name -> options")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--heartbeat-ms", type=int, default=1000)
    p.add_argument("--liveness", type=int, default=3)
    p.add_argument("--server-key", help="tandemd's public key file (CURVE endpoints)")
    p.add_argument("--key", help="this worker's secret key file (CURVE endpoints)")
    p.add_argument("--log-level", default="info")
    return p


def run(args: argparse.Namespace) -> int:
    die_with_parent()
    setup_logging(args.log_level, f"worker[{args.kind}]")
    import torch

    from daemon.workers import analyzers
    from daemon.workers.analyzers.specs import DEFAULT_AUDIO
    from daemon.workers.worker import Worker

    torch.set_num_threads(args.threads)
    # Payloads arrive in read-only ZeroMQ buffers; analyzers only read them.
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    modality: analyzers.Modality = "video" if args.kind == "vision" else "audio"
    names = [n for n in args.analyzers.split(",") if n] or (
        ["motion"] if args.kind == "vision" else list(DEFAULT_AUDIO)
    )
    try:
        built = analyzers.build(names, modality, json.loads(args.options))
    except (analyzers.UnknownAnalyzerError, ValueError) as exc:
        logging.getLogger("worker").error("%s", exc)
        return 2
    if bool(args.server_key) != bool(args.key):
        logging.getLogger("worker").error("--server-key and --key go together")
        return 2
    worker = Worker(
        args.endpoint, args.kind, built, args.capacity, args.heartbeat_ms, args.liveness
    )
    if args.key:
        worker.curve = (args.server_key, args.key)
    return worker.run()


def main(argv: list[str] | None = None) -> int:
    return run(build_parser("python -m daemon.workers").parse_args(argv))
