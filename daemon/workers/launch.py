"""How a worker process is started, and how it reads its command line.

Both sides live here so they cannot drift apart: tandemd builds its local workers'
command lines with `WorkerLaunch.argv()`, and the worker (`python -m daemon.workers`,
or `tandem worker` on another host) parses them with `build_parser()`; a test checks
that a launch survives the round trip.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from daemon.cli.help import Help
from daemon.wire.vocabulary import Kind

MODULE = "daemon.workers"


def build_parser(prog: str = "tandem worker") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Run one tandem worker process.",
        formatter_class=Help,
    )
    p.add_argument("--kind", choices=["vision", "audio"], required=True, help="what it analyses")
    p.add_argument("--endpoint", required=True, help="tandemd's dispatch endpoint")
    p.add_argument("--capacity", type=int, default=4, help="items held at once")
    p.add_argument("--analyzers", default="", help="comma-separated; default per kind")
    p.add_argument("--options", default="{}", help="JSON: analyzer name -> options")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default="fp32", help="autocast")
    p.add_argument("--memory-fraction", type=float, default=1.0, help="of the GPU's memory")
    p.add_argument("--compile", action="store_true", help="torch.compile the models")
    p.add_argument("--max-batch", type=int, default=1, help="items per forward at most")
    p.add_argument("--max-wait-ms", type=float, default=0.0, help="wait for a fuller batch")
    p.add_argument("--metrics-port", type=int, default=-1, help="serve /metrics; -1: off")
    p.add_argument("--metrics-host", default="127.0.0.1", help="address of /metrics")
    p.add_argument("--heartbeat-ms", type=int, default=1000, help="until tandemd says")
    p.add_argument("--liveness", type=int, default=3, help="missed heartbeats: tandemd dead")
    p.add_argument(
        "--server-key", help="tandemd's public key file (CURVE endpoints); ${NAME} expanded"
    )
    p.add_argument(
        "--key",
        help="this worker's secret key file (CURVE endpoints); ${NAME} expanded, e.g. "
        "${CREDENTIALS_DIRECTORY}/worker.key_secret under systemd's LoadCredential=",
    )
    p.add_argument("--log-level", default="info", help="debug, info, warning or error")
    p.add_argument(
        "--child", help="set by tandemd for the workers it starts: its name for the process"
    )
    return p


@dataclass(frozen=True)
class WorkerLaunch:
    kind: Kind
    endpoint: str
    capacity: int = 4
    analyzers: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    threads: int = 1
    device: str = "cpu"
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    memory_fraction: float = 1.0
    compile: bool = False
    max_batch: int = 1
    max_wait_ms: float = 0.0
    metrics_port: int = -1  # -1: off
    metrics_host: str = "127.0.0.1"
    heartbeat_ms: int = 1000
    liveness: int = 3
    server_key: str | None = None
    key: str | None = None
    log_level: str = "info"
    child: str | None = None  # tandemd's name for the process (its local workers)

    def argv(self) -> list[str]:
        """The module and its arguments, after `python -m`."""
        flags: dict[str, str | None] = {
            "--kind": self.kind,
            "--endpoint": self.endpoint,
            "--capacity": str(self.capacity),
            "--analyzers": ",".join(self.analyzers),
            "--options": json.dumps(self.options),
            "--threads": str(self.threads),
            "--device": self.device,
            "--precision": self.precision,
            "--memory-fraction": repr(self.memory_fraction),
            "--max-batch": str(self.max_batch),
            "--max-wait-ms": repr(self.max_wait_ms),
            "--metrics-port": str(self.metrics_port),
            "--metrics-host": self.metrics_host,
            "--heartbeat-ms": str(self.heartbeat_ms),
            "--liveness": str(self.liveness),
            "--server-key": self.server_key,
            "--key": self.key,
            "--log-level": self.log_level,
            "--child": self.child,
        }
        args = [
            part for flag, value in flags.items() if value is not None for part in (flag, value)
        ]
        return [MODULE, *args, *(["--compile"] if self.compile else [])]

    @classmethod
    def parse(cls, args: list[str]) -> WorkerLaunch:
        """The launch from a worker's arguments (without the module)."""
        return cls.from_namespace(build_parser().parse_args(args))

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace) -> WorkerLaunch:
        return cls(
            kind=ns.kind,
            endpoint=ns.endpoint,
            capacity=ns.capacity,
            analyzers=tuple(n for n in ns.analyzers.split(",") if n),
            options=json.loads(ns.options),
            threads=ns.threads,
            device=ns.device,
            precision=ns.precision,
            memory_fraction=ns.memory_fraction,
            compile=ns.compile,
            max_batch=ns.max_batch,
            max_wait_ms=ns.max_wait_ms,
            metrics_port=ns.metrics_port,
            metrics_host=ns.metrics_host,
            heartbeat_ms=ns.heartbeat_ms,
            liveness=ns.liveness,
            server_key=ns.server_key,
            key=ns.key,
            log_level=ns.log_level,
            child=ns.child,
        )
