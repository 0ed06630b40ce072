"""A worker process: `tandem worker --kind vision --endpoint ENDPOINT` (or `python -m
daemon.workers ...` as tandemd starts its local ones)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import warnings

from daemon.allocator import freeze_startup_objects, keep_frame_buffers
from daemon.envsubst import UnsetVariableError, expand
from daemon.lifeline import die_with_parent
from daemon.logs import setup_logging
from daemon.vocabulary import modality_of
from daemon.workers.launch import build_parser


def run(args: argparse.Namespace) -> int:
    die_with_parent()
    keep_frame_buffers()
    setup_logging(args.log_level, f"worker[{args.kind}]")
    log = logging.getLogger("worker")
    if bool(args.server_key) != bool(args.key):
        log.error("--server-key and --key go together")
        return 2
    try:
        curve = _key_files(args.server_key, args.key)
    except UnsetVariableError as exc:
        log.error("%s", exc)
        return 2
    import cv2
    import torch
    from prometheus_client import CollectorRegistry

    from daemon.workers import analyzers
    from daemon.workers.analyzers.specs import DEFAULT_AUDIO
    from daemon.workers.batching import BatchRunner
    from daemon.workers.device import DeviceError, make_runtime
    from daemon.workers.metrics import WorkerMetrics, serve
    from daemon.workers.worker import BatchPolicy, Worker

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)  # OpenCV's own pool would otherwise take every core
    # Payloads arrive in read-only ZeroMQ buffers; analyzers only read them.
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    modality = modality_of(args.kind)
    names = [n for n in args.analyzers.split(",") if n] or (
        ["motion"] if args.kind == "vision" else list(DEFAULT_AUDIO)
    )
    device = args.device
    specs = analyzers.specs()
    if not any(n in specs and specs[n].device == "accelerator" for n in names):
        device = "cpu"  # nothing here wants a GPU: leave its memory to those that do
    try:
        runtime = make_runtime(device, args.precision, args.memory_fraction, args.compile)
        built = analyzers.build(names, modality, json.loads(args.options), runtime)
    except (analyzers.UnknownAnalyzerError, DeviceError, ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    log.info("analyzers %s on %s (%s)", ",".join(names), runtime.device, runtime.precision)
    metrics = WorkerMetrics(CollectorRegistry())
    if args.metrics_port >= 0:
        port = serve(metrics, args.metrics_port, args.metrics_host)
        log.info("metrics on http://%s:%d/metrics", args.metrics_host, port)
    runner = BatchRunner(built, runtime, metrics)
    runner.warmup(args.max_batch)
    freeze_startup_objects()
    worker = Worker(
        args.endpoint,
        args.kind,
        runner,
        args.capacity,
        args.heartbeat_ms,
        args.liveness,
        BatchPolicy(args.max_batch, args.max_wait_ms),
        child=args.child,
    )
    worker.curve = curve
    return worker.run()


def _key_files(server_key: str | None, key: str | None) -> tuple[str, str] | None:
    """The key paths with `${NAME}` read from the environment: under systemd,
    `--key ${CREDENTIALS_DIRECTORY}/worker.key_secret` (LoadCredential=) reaches a secret
    that the unit's DynamicUser could not read where root keeps it."""
    if not (server_key and key):
        return None
    return expand(server_key, os.environ, "--server-key"), expand(key, os.environ, "--key")


def main(argv: list[str] | None = None) -> int:
    return run(build_parser("python -m daemon.workers").parse_args(argv))
