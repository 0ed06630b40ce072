"""A worker process: `tandem worker --kind vision --endpoint ENDPOINT` (or `python -m
daemon.workers ...` as tandemd starts its local ones)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import warnings
from typing import TYPE_CHECKING

from daemon.envsubst import UnsetVariableError, expand
from daemon.runtime.allocator import freeze_startup_objects, keep_frame_buffers
from daemon.runtime.lifeline import die_with_parent
from daemon.runtime.logs import setup_logging
from daemon.wire.vocabulary import Modality, modality_of
from daemon.workers.launch import build_parser

if TYPE_CHECKING:
    from daemon.workers.device import Runtime


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
    from prometheus_client import CollectorRegistry

    from daemon.workers import analyzers
    from daemon.workers.analyzers.specs import DEFAULT_AUDIO
    from daemon.workers.batching import BatchRunner
    from daemon.workers.metrics import WorkerMetrics, serve
    from daemon.workers.worker import BatchPolicy, Worker

    cv2.setNumThreads(args.threads)  # OpenCV's own pool would otherwise take every core
    modality = modality_of(args.kind)
    names = [n for n in args.analyzers.split(",") if n] or (
        ["motion"] if args.kind == "vision" else list(DEFAULT_AUDIO)
    )
    try:
        runtime = _runtime(args, names, modality)
        built = analyzers.build(names, modality, json.loads(args.options), runtime)
    except (analyzers.UnknownAnalyzerError, ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    where = f"{runtime.device} ({runtime.precision})" if runtime else "cpu, without torch"
    log.info("analyzers %s on %s", ",".join(names), where)
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


def _runtime(args: argparse.Namespace, names: list[str], modality: Modality) -> Runtime | None:
    """torch's device and precision for the analyzers, or None when none of them uses
    torch: then this process never imports it (about 250 MB less, docs/configuration.md).
    Raises UnknownAnalyzerError, or DeviceError (a ValueError) for a device it lacks."""
    from daemon.workers import analyzers

    specs = [analyzers.spec_for(name, modality) for name in names]
    if not any(spec.uses_torch for spec in specs):
        return None
    import torch

    from daemon.workers.device import make_runtime

    torch.set_num_threads(args.threads)
    # Payloads arrive in read-only ZeroMQ buffers; analyzers only read them.
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    device = args.device
    if not any(spec.device == "accelerator" for spec in specs):
        device = "cpu"  # nothing here wants a GPU: leave its memory to those that do
    return make_runtime(device, args.precision, args.memory_fraction, args.compile)


def _key_files(server_key: str | None, key: str | None) -> tuple[str, str] | None:
    """The key paths with `${NAME}` read from the environment: under systemd,
    `--key ${CREDENTIALS_DIRECTORY}/worker.key_secret` (LoadCredential=) reaches a secret
    that the unit's DynamicUser could not read where root keeps it."""
    if not (server_key and key):
        return None
    return expand(server_key, os.environ, "--server-key"), expand(key, os.environ, "--key")


def main(argv: list[str] | None = None) -> int:
    return run(build_parser("python -m daemon.workers").parse_args(argv))
