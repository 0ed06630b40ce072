"""`tandem`: the operator's command line.

tandem watch [--stream ID] [--count N] [--json] [--events]   print published records
tandem status [--json]                            streams, workers and rates from tandemd
tandem check-config PATH                          validate a config, exit 2 if bad
tandem analyze FILE [--config PATH] [--json]      the whole pipeline on one recording
tandem worker --kind vision --endpoint ENDPOINT   run a worker (remote hosts, systemd)
tandem keys DIR NAME                              write a CURVE key pair (secret 0600)
"""

from __future__ import annotations

import argparse
import json
import sys

from daemon.config import ConfigError, load_config

DEFAULT_RESULTS = "tcp://127.0.0.1:7701"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tandem", description="tandem's command line.")
    sub = parser.add_subparsers(dest="command", required=True)

    watch = sub.add_parser("watch", help="subscribe to results and print them")
    watch.add_argument("--stream", help="only this stream")
    watch.add_argument("--count", type=int, help="exit 0 after this many records")
    watch.add_argument("--json", action="store_true", help="print each record as JSON")
    watch.add_argument("--events", action="store_true", help="events too (event.<stream>)")
    watch.add_argument(
        "--endpoint", help=f"results endpoint (default: the config's, or {DEFAULT_RESULTS})"
    )
    watch.add_argument("--config", default="config.toml", help="read the endpoint from here")
    watch.add_argument("--timeout", type=float, help="exit 1 after this many seconds of silence")

    status = sub.add_parser("status", help="ask tandemd for its streams, workers and rates")
    status.add_argument("--json", action="store_true", help="print tandemd's JSON answer")
    status.add_argument(
        "--endpoint", help="control socket (default: from the config, else /run/tandem)"
    )
    status.add_argument("--config", default="config.toml", help="read the endpoint from here")
    status.add_argument("--timeout", type=float, default=5.0, help="seconds to wait")
    analyze = sub.add_parser(
        "analyze", help="run the whole pipeline on one recording, print records and events"
    )
    analyze.add_argument("file")
    analyze.add_argument(
        "--config", help="workers, fusion and events from here (default: built-in)"
    )
    analyze.add_argument("--json", action="store_true", help="JSON lines, summary included")

    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("path")

    keys = sub.add_parser("keys", help="write a CURVE key pair (NAME.key, NAME.key_secret)")
    keys.add_argument("directory")
    keys.add_argument("name", help="e.g. tandemd, or a worker host's name")

    from daemon.workers.main import build_parser

    sub.add_parser("worker", help="run a worker process", parents=[build_parser()], add_help=False)

    args = parser.parse_args(argv)
    if args.command == "watch":
        return _watch(args)
    if args.command == "status":
        from daemon.status import find_endpoint, run_status

        return run_status(args.endpoint or find_endpoint(args.config), args.json, args.timeout)
    if args.command == "analyze":
        from daemon import analyze as analyze_command

        return analyze_command.run(args.file, args.config, args.json)
    if args.command == "check-config":
        return _check_config(args.path)
    if args.command == "keys":
        return _keys(args.directory, args.name)
    from daemon.workers.main import run

    return run(args)


def _check_config(path: str) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"tandem: {exc}", file=sys.stderr)
        return 2
    print(
        f"{path}: ok ({len(config.streams)} streams, "
        f"{config.workers.vision.processes} vision and {config.workers.audio.processes} "
        "audio workers)"
    )
    return 0


def _keys(directory: str, name: str) -> int:
    from daemon.security import SecurityError, write_keypair

    try:
        public, secret = write_keypair(directory, name)
    except (SecurityError, OSError) as exc:
        print(f"tandem: {exc}", file=sys.stderr)
        return 1
    print(f"{public}: public key (give to the other side)\n{secret}: secret key (keep here)")
    return 0


def _watch(args: argparse.Namespace) -> int:
    from daemon.publishing.format import digest_line, event_line
    from daemon.publishing.subscriber import Event, FusedRecord, Subscriber

    endpoint = args.endpoint or _endpoint_from(args.config)
    kinds = ["fused", "event"] if args.events else ["fused"]
    topics = [f"{k}.{args.stream}" if args.stream else f"{k}." for k in kinds]
    seen = 0
    try:
        with Subscriber(endpoint, topics) as sub:
            for message in sub.messages(timeout_s=args.timeout):
                if args.stream and message.stream != args.stream:
                    continue  # topic prefix "fused.cam" also matches "fused.cam2"
                if isinstance(message, FusedRecord):
                    text = digest_line(message.stream, message.raw)
                elif isinstance(message, Event):
                    text = event_line(message.raw)
                else:
                    continue
                print(json.dumps(message.raw) if args.json else text, flush=True)
                seen += 1
                if args.count is not None and seen >= args.count:
                    return 0
    except KeyboardInterrupt:
        return 0
    if args.timeout is not None:
        print(f"tandem: no records from {endpoint} for {args.timeout:g} s", file=sys.stderr)
        return 1
    return 0


def _endpoint_from(path: str) -> str:
    try:
        return load_config(path).publish.endpoint
    except ConfigError:
        return DEFAULT_RESULTS


if __name__ == "__main__":
    sys.exit(main())
