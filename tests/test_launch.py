"""Each child's launch lives beside its parser: what tandemd writes, the child reads back
the same (argv, parse, equal), for ingest processes and workers."""

from __future__ import annotations

from daemon.config import parse_config
from daemon.core.startup import ingest_launch
from daemon.ingest.launch import IngestLaunch
from daemon.workers.launch import WorkerLaunch


def test_a_worker_launch_round_trips_through_its_argv() -> None:
    every_field = WorkerLaunch(
        kind="vision",
        endpoint="tcp://127.0.0.1:7710",
        capacity=6,
        analyzers=("motion", "objects"),
        options={"objects": {"model": "/models/detr", "threshold": 0.4}},
        threads=2,
        device="cuda:1",
        precision="fp16",
        memory_fraction=0.45,
        compile=True,
        max_batch=8,
        max_wait_ms=12.5,
        metrics_port=9312,
        metrics_host="0.0.0.0",
        heartbeat_ms=200,
        liveness=5,
        server_key="/etc/tandem/tandemd.key",
        key="${CREDENTIALS_DIRECTORY}/w.key_secret",
        log_level="debug",
        child="worker-vision-1",
    )
    for launch in (every_field, WorkerLaunch(kind="audio", endpoint="ipc:///run/t/w.sock")):
        module, *args = launch.argv()
        assert module == "daemon.workers"
        assert WorkerLaunch.parse(args) == launch


def test_tandemds_ingest_launch_round_trips_from_the_config() -> None:
    config = parse_config(
        {
            "streams": [
                {
                    "id": "door",
                    "url": "rtsp://cam/1",
                    "options": {"rtsp_transport": "tcp"},
                    "fps": 2.5,
                    "audio_url": "rtsp://cam/2",
                    "keep_aspect": True,
                }
            ],
            "log": {"level": "debug"},
        }
    )
    launch = ingest_launch(config, "door", "ipc:///x")
    module, *args = launch.argv()
    assert module == "daemon.ingest"
    assert IngestLaunch.parse(args, launch.stdin()) == launch
    assert launch.spec.fps == 2.5 and launch.spec.live and launch.log_level == "debug"
