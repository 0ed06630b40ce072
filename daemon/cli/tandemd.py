"""`tandemd [CONFIG]`: run the service on a config file (default ./config.toml).

Exit codes: 0 stopped cleanly, 1 could not start (a port or socket taken), 2 bad config.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from prometheus_client import CollectorRegistry

from daemon.cli.help import Help
from daemon.cli.version import version_text
from daemon.config import ConfigError, MetricsConfig, load_config
from daemon.core.health import Health
from daemon.core.metrics import register_process_collectors
from daemon.core.notify import Notifier, WedgeHook
from daemon.runtime.allocator import freeze_startup_objects, keep_frame_buffers
from daemon.runtime.logs import FORMAT_ENV, setup_logging

EXIT_STARTUP = 1
EXIT_CONFIG = 2


EXIT_CODES = """exit codes:
  0  stopped cleanly (SIGTERM, SIGINT)
  1  could not start (a port or socket taken, a key file unreadable)
  2  bad config (the message names the file and the key)"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tandemd",
        description="Run the tandem service on a config file.",
        epilog=EXIT_CODES,
        formatter_class=Help,
    )
    parser.add_argument("config", nargs="?", default="config.toml", help="TOML config file")
    parser.add_argument("--version", action="version", version=version_text("tandemd"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_frame_buffers()
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc.lines("tandemd: "), file=sys.stderr)
        return EXIT_CONFIG
    # Children (ingest, local workers) log in the same format.
    os.environ[FORMAT_ENV] = setup_logging(config.log.level, "tandemd", config.log.format)
    log = logging.getLogger("tandemd")

    from daemon.core.service import Tandemd
    from daemon.core.startup import StartupError  # after config: bad configs fail fast

    registry = CollectorRegistry()
    register_process_collectors(registry)
    try:
        service = Tandemd(
            config,
            registry,
            Notifier.from_env(os.environ),
            WedgeHook.from_env(os.environ),
            config_path=args.config,
        )
        if config.metrics.enabled:
            _serve_metrics(config.metrics, registry, service.ops.health, log)
    except StartupError as exc:
        log.error("%s: %s", args.config, exc)
        return EXIT_STARTUP
    freeze_startup_objects()
    return service.run()


def _serve_metrics(
    cfg: MetricsConfig, registry: CollectorRegistry, health: Health, log: logging.Logger
) -> None:
    """/metrics, /healthz and /readyz (daemon/core/httpd.py)."""
    from daemon.core.httpd import serve
    from daemon.core.startup import StartupError

    host, port = cfg.host, cfg.port
    try:
        server = serve(host, port, registry, health)
    except OSError as exc:
        raise StartupError(
            f"metrics.port = {port}: cannot listen on {host}: {exc.strerror}"
        ) from exc
    log.info("metrics on http://%s:%d/metrics", host, server.server_address[1])


if __name__ == "__main__":
    sys.exit(main())
