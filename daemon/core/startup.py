"""What tandemd derives from its config before its loop runs: the runtime directory, the
key pair of its own local workers, the snapshot store, each local worker's and each
stream's ingest process's launch.
Plain functions of their inputs; daemon/core/service.py calls them."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from daemon.config import Config, WorkerPoolConfig
from daemon.ingest.launch import IngestLaunch
from daemon.publishing.snapshots import EventSnapshots, SnapshotStore
from daemon.wire.security import load_secret, write_keypair
from daemon.wire.vocabulary import Kind
from daemon.workers.launch import WorkerLaunch
from streams import SourceSpec, auto_decode_threads


class StartupError(Exception):
    """tandemd cannot start; the message names the config key and value at fault."""


def runtime_dir(config: Config) -> Path:
    configured = config.runtime_dir or os.environ.get("RUNTIME_DIRECTORY", "")
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(tempfile.mkdtemp(prefix="tandem-"))


def local_worker_keys(run_dir: Path, server_secret_key: str) -> tuple[Path, Path]:
    """tandemd's public key and a fresh key pair for its own local workers, 0600 in
    the runtime directory: (server public key file, worker secret key file)."""
    keys = run_dir / f"keys-{os.getpid()}"
    shutil.rmtree(keys, ignore_errors=True)
    _, worker_secret = write_keypair(keys, "local-worker")
    public, _ = load_secret(server_secret_key)
    server_public = keys / "server.key"
    server_public.write_text(f'metadata\ncurve\n    public-key = "{public.decode()}"\n')
    server_public.chmod(0o600)
    return server_public, worker_secret


def event_snapshots(config: Config, run_dir: Path) -> EventSnapshots | None:
    cfg = config.snapshots
    if not cfg.enabled:
        return None
    directory = Path(cfg.directory) if cfg.directory else run_dir / "snapshots"
    try:
        store = SnapshotStore(directory, cfg.max_bytes)
    except OSError as exc:
        raise StartupError(f"snapshots.directory = {str(directory)!r}: {exc}") from exc
    return EventSnapshots(store, cfg.ring_frames, cfg.quality, cfg.boxes, cfg.events)


def worker_launch(
    config: Config,
    name: str,
    kind: Kind,
    pool: WorkerPoolConfig,
    device: str,
    n: int,
    dispatch_endpoint: str,
    local_keys: tuple[Path, Path] | None,
) -> WorkerLaunch:
    """The command line of local worker `name`, the n-th of its pool."""
    # A wildcard bind address is reached locally through loopback.
    endpoint = re.sub(r"^tcp://(0\.0\.0\.0|\*)", "tcp://127.0.0.1", dispatch_endpoint)
    server_key, key = (str(p) for p in local_keys) if local_keys else (None, None)
    if pool.metrics_port is None:
        metrics_port = -1  # off
    elif pool.metrics_port == 0:
        metrics_port = 0  # each picks a free port
    else:
        metrics_port = pool.metrics_port + n
    return WorkerLaunch(
        kind=kind,
        endpoint=endpoint,
        capacity=pool.capacity,
        analyzers=tuple(pool.analyzers),
        options=dict(pool.options),
        threads=pool.threads,
        device=device,
        precision=pool.precision,
        memory_fraction=pool.memory_fraction,
        compile=pool.compile,
        max_batch=pool.max_batch,
        max_wait_ms=pool.max_wait_ms,
        metrics_port=metrics_port,
        heartbeat_ms=config.dispatch.heartbeat_interval_ms,
        liveness=config.dispatch.heartbeat_liveness,
        server_key=server_key,
        key=key,
        log_level=config.log.level,
        child=name,
    )


def ingest_launch(config: Config, stream_id: str, endpoint: str) -> IngestLaunch:
    """What the stream's ingest process is started with."""
    s = next(s for s in config.streams if s.id == stream_id)
    threads = s.decode_threads
    if threads == "auto":
        videos = sum(1 for other in config.streams if other.video)
        threads = auto_decode_threads(videos, len(os.sched_getaffinity(0)))
    spec = SourceSpec(
        stream_id=s.id,
        url=s.url,
        format=s.format,
        options=dict(s.options),
        video=s.video,
        audio=s.audio,
        fps=s.fps,
        width=s.width,
        height=s.height,
        audio_rate=s.audio_rate,
        audio_channels=s.audio_channels,
        audio_chunk_s=s.audio_chunk_ms / 1000,
        pace=s.effective_pace,
        open_timeout_s=s.open_timeout_s,
        read_timeout_s=s.read_timeout_s,
        audio_url=s.audio_url,
        audio_format=s.audio_format,
        keep_aspect=s.keep_aspect,
        live=s.mode == "live",
        loop=s.loop,
        start_offset_s=s.start_offset_s,
        hwaccel=s.hwaccel,
        decode_threads=threads,
        slice_threads=s.decode_threads == "auto",
        skip_nonref=s.skip_nonref,
        reconnect_min_s=s.reconnect_min_s,
        reconnect_max_s=s.reconnect_max_s,
        stall_timeout_s=s.stall_timeout_s,
    )
    return IngestLaunch(spec, endpoint, bound=s.queue, log_level=config.log.level)
