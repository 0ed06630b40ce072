"""The ingest process of one stream: owns its lifecycle from open to end of stream.

Started by tandemd as `python -m daemon.ingest SPEC_JSON ENDPOINT`. Exit codes:
0 end of source or stopped, 3 the source failed (the error is sent to tandemd first).
"""

from __future__ import annotations

import json
import logging
import sys

import zmq

from daemon.ingest.sender import IngestSender
from daemon.lifeline import die_with_parent
from daemon.logs import setup_logging
from streams import Source, SourceError, SourceSpec, SourceStats

log = logging.getLogger("ingest")
EXIT_SOURCE_FAILED = 3
LIVE_DRAIN_S = 1.0


def run(spec: SourceSpec, endpoint: str, live: bool, bound: int) -> int:
    stats = SourceStats()
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sender = IngestSender(ctx, endpoint, spec.stream_id, live=live, bound=bound, stats=stats)
    source = Source(spec, stats)
    try:
        source.open()
        sender.hello(video=source.has_video, audio=source.has_audio)
        log.info("opened %s (video: %s, audio: %s)", spec.url, source.has_video, source.has_audio)
        for item in source.items():
            sender.put(item)
            if sender.stopping:
                sender.end("stopped")
                return 0
        sender.drain(LIVE_DRAIN_S if live else None)
        sender.end("stopped" if sender.stopping else "eof")
        return 0
    except SourceError as exc:
        log.error("%s", exc)
        sender.end("error", str(exc))
        return EXIT_SOURCE_FAILED
    finally:
        source.close()
        sender.close()
        ctx.term()


def main(argv: list[str] | None = None) -> int:
    die_with_parent()
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m daemon.ingest SPEC_JSON ENDPOINT", file=sys.stderr)
        return 2
    raw = json.loads(args[0])
    live, bound, level = raw.pop("live"), raw.pop("bound"), raw.pop("log_level")
    spec = SourceSpec(**raw)
    setup_logging(level, f"ingest[{spec.stream_id}]")
    return run(spec, args[1], live=live, bound=bound)
