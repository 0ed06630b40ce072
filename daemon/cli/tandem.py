"""`tandem`: the operator's command line.

tandem watch [--stream ID] [--count N] [--json] [--events] [--detections]
tandem status [--json]                            streams, workers and rates from tandemd
tandem check-config PATH                          validate a config, exit 2 if bad
tandem analyze FILE [--config PATH] [--json] [--snapshots DIR]   one recording, whole pipeline
tandem worker --kind vision --endpoint ENDPOINT   run a worker (remote hosts, systemd)
tandem keys DIR NAME                              write a CURVE key pair (secret 0600)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from daemon.addresses import check_endpoint
from daemon.cli.help import Help
from daemon.cli.version import version_text
from daemon.config import ConfigError, load_config

DEFAULT_RESULTS = "tcp://127.0.0.1:7701"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_CODES = """exit codes:
  0  done (watch: --count records seen; status: tandemd answered)
  1  failed (no answer, nothing within --timeout, an analysis that failed)
  2  bad usage or config (the message names the option, file or key)"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tandem",
        description="tandem's command line.",
        epilog=EXIT_CODES,
        formatter_class=Help,
    )
    parser.add_argument("--version", action="version", version=version_text("tandem"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=text, description=text, epilog=EXIT_CODES, formatter_class=Help
        )

    watch = command("watch", "subscribe to results and print them")
    watch.add_argument("--stream", help="only this stream (default: every stream)")
    watch.add_argument("--count", type=int, help="exit 0 after this many records")
    watch.add_argument("--json", action="store_true", help="print each record as JSON")
    watch.add_argument("--events", action="store_true", help="events too (event.<stream>)")
    watch.add_argument(
        "--detections",
        action="store_true",
        help="every analysed frame and chunk too (detections.<stream>: boxes, labels, text)",
    )
    watch.add_argument(
        "--endpoint",
        help=f"results endpoint, tcp://HOST:PORT (default: the config's, or {DEFAULT_RESULTS})",
    )
    watch.add_argument("--config", default="config.toml", help="read the endpoint from here")
    watch.add_argument(
        "--shards", action="store_true", help="every shard of the config's [cluster] at once"
    )
    watch.add_argument(
        "--timeout", type=float, help="exit 1 after this many seconds without a record"
    )
    watch.add_argument(
        "--notice-after",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="say on stderr when no record came for this long (and keep waiting)",
    )

    status = command("status", "ask tandemd for its streams, workers and rates")
    status.add_argument("--json", action="store_true", help="print tandemd's JSON answer")
    status.add_argument(
        "--endpoint",
        help="control socket (default: from the config, else /run/tandem, else the newest "
        "/tmp/tandem-* of a live tandemd)",
    )
    status.add_argument("--config", default="config.toml", help="read the endpoint from here")
    status.add_argument("--timeout", type=float, default=5.0, help="seconds to wait")

    analyze = command(
        "analyze", "run the whole pipeline on one recording, print records and events"
    )
    analyze.add_argument("file", help="the recording (any container FFmpeg reads)")
    analyze.add_argument(
        "--config", help="workers, fusion and events from here (default: the built-in config)"
    )
    analyze.add_argument("--json", action="store_true", help="JSON lines, summary included")
    analyze.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="a progress bar on stderr; auto: only when stderr is a terminal",
    )
    analyze.add_argument(
        "--snapshots",
        metavar="DIR",
        help="write a JPEG per event here (default: the config's [snapshots] directory, else none)",
    )

    proxy = command("proxy", "forward every shard's results to one endpoint")
    proxy.add_argument("--bind", default="tcp://127.0.0.1:7700", help="for subscribers")
    proxy.add_argument(
        "--endpoint", action="append", help="a shard's results endpoint (repeat for each)"
    )
    proxy.add_argument("--config", default="config.toml", help="no --endpoint: its shards")

    check = command("check-config", "validate a config file, every error at once")
    check.add_argument("path", help="the TOML config file")

    keys = command("keys", "write a CURVE key pair (NAME.key, NAME.key_secret)")
    keys.add_argument("directory", help="where to write them (created if missing)")
    keys.add_argument("name", help="e.g. tandemd, or a worker host's name")

    from daemon.workers.launch import build_parser as worker_parser

    sub.add_parser(
        "worker",
        help="run a worker process",
        description="Run one tandem worker process.",
        parents=[worker_parser()],
        add_help=False,
        formatter_class=Help,
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(build_parser().parse_args(argv))
    except BrokenPipeError:
        # The reader left (`tandem status | head -3`): not an error of ours. Point stdout
        # at /dev/null so the interpreter's last flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    if args.command in ("watch", "status") and args.endpoint:
        try:
            check_endpoint(args.endpoint)
        except ValueError as exc:
            print(f"tandem {args.command}: --endpoint: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if args.command == "watch":
        return _watch(args)
    if args.command == "status":
        from daemon.control.client import find_endpoint, run_status

        if args.endpoint:
            return run_status(args.endpoint, args.json, args.timeout)
        endpoint, dead = find_endpoint(args.config)
        return run_status(endpoint, args.json, args.timeout, dead)
    if args.command == "analyze":
        from daemon.cli import analyze as analyze_command

        return analyze_command.run(args.file, args.config, args.json, args.progress, args.snapshots)
    if args.command == "check-config":
        return _check_config(args.path)
    if args.command == "proxy":
        return _proxy(args)
    if args.command == "keys":
        return _keys(args.directory, args.name)
    from daemon.workers.main import run

    return run(args)


def _proxy(args: argparse.Namespace) -> int:
    from daemon.publishing.proxy import run_proxy, shard_endpoints

    try:
        endpoints = args.endpoint or shard_endpoints(load_config(args.config))
        for endpoint in [args.bind, *endpoints]:
            check_endpoint(endpoint)
    except (ConfigError, ValueError) as exc:
        print(f"tandem proxy: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return run_proxy(args.bind, endpoints)


def _check_config(path: str) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc.lines("tandem: "), file=sys.stderr)
        return EXIT_USAGE
    print(
        f"{path}: ok ({len(config.streams)} streams, "
        f"{config.workers.vision.processes} vision and {config.workers.audio.processes} "
        "audio workers)"
    )
    return 0


def _keys(directory: str, name: str) -> int:
    from daemon.wire.security import SecurityError, write_keypair

    try:
        public, secret = write_keypair(directory, name)
    except (SecurityError, OSError) as exc:
        print(f"tandem: {exc}", file=sys.stderr)
        return 1
    print(f"{public}: public key (give to the other side)\n{secret}: secret key (keep here)")
    return 0


def _watch(args: argparse.Namespace) -> int:
    import msgspec
    import zmq

    from daemon.publishing.format import detections_line, digest_line, event_line
    from daemon.publishing.records import Detections
    from daemon.publishing.subscriber import Event, Fused, Subscriber
    from daemon.publishing.watch import Silence

    try:
        endpoints = _watched(args)
    except (ConfigError, ValueError) as exc:
        print(f"tandem watch: --shards: {exc}", file=sys.stderr)
        return EXIT_USAGE
    endpoint = ", ".join(endpoints)
    kinds = ["fused", "event"] if args.events else ["fused"]
    if args.detections:
        kinds.append("detections")
    # Every stream's topics, --stream filtered here: a silent stream is then told from a
    # silent tandemd (and "fused.cam" would also match "fused.cam2").
    topics = [f"{k}." for k in kinds]
    silence = Silence(endpoint, args.stream, args.notice_after, args.timeout)
    seen = 0
    try:
        with Subscriber(endpoints, topics) as sub:
            while not silence.given_up(time.monotonic()):
                message = next(iter(sub.messages(timeout_s=0.25)), None)
                if message is None:
                    continue
                if args.stream and message.stream != args.stream:
                    silence.other(message.stream)
                    continue
                if not isinstance(message, Fused | Event | Detections):
                    continue
                raw = msgspec.to_builtins(message)
                if isinstance(message, Fused):
                    text = digest_line(message.stream, raw)
                elif isinstance(message, Event):
                    text = event_line(raw)
                else:
                    text = detections_line(raw)
                print(json.dumps(raw) if args.json else text, flush=True)
                silence.heard(time.monotonic())
                seen += 1
                if args.count is not None and seen >= args.count:
                    return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK
    except zmq.ZMQError as exc:
        print(f"tandem watch: cannot subscribe to {endpoint}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_FAILED


def _watched(args: argparse.Namespace) -> list[str]:
    """The endpoints `watch` subscribes to: every shard's with --shards."""
    if args.shards:
        from daemon.publishing.proxy import shard_endpoints

        return shard_endpoints(load_config(args.config))
    return [args.endpoint or _endpoint_from(args.config)]


def _endpoint_from(path: str) -> str:
    try:
        return load_config(path).publish.endpoint
    except ConfigError:
        return DEFAULT_RESULTS


if __name__ == "__main__":
    sys.exit(main())
