"""`tandem analyze FILE`: the whole pipeline on one recording, as fast as the workers go.

tandemd runs in this process (real ingest and worker processes, real sockets) on the
config's workers, fusion and event rules, with the file as its only stream (mode
"file", pace "none": nothing is dropped). A subscriber thread prints every fused record
and event; when the stream has ended tandemd stops, and a summary per stream follows.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import socket
import sys
import tempfile
import threading
import tomllib
from pathlib import Path
from typing import Any

import av
from prometheus_client import CollectorRegistry

from daemon.config import ConfigError, parse_config
from daemon.publishing.format import digest_line, event_line
from daemon.publishing.progress import Progress, show_progress
from daemon.publishing.subscriber import Subscriber

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config.toml"
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


class _Collector(threading.Thread):
    """Prints what tandemd publishes until the stream's final status, then stops it."""

    def __init__(
        self, endpoint: str, stream: str, as_json: bool, stop: Any, bar: Progress | None
    ) -> None:
        super().__init__(name="analyze-subscriber", daemon=True)
        self.bar = bar
        self.sub = Subscriber(endpoint, ["fused.", "event.", "status."])
        self.stream, self.as_json, self.stop = stream, as_json, stop
        self.records: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.final: dict[str, Any] | None = None
        self.finished = threading.Event()

    def run(self) -> None:
        try:
            while not self.finished.is_set():
                for _topic, message in self.sub.records(timeout_s=0.2):
                    self._take(message)
                    break
        finally:
            self.sub.close()
            if self.bar is not None:
                self.bar.close()

    def _print(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line)  # above the bar, which is drawn again below it
        else:
            print(line)

    def _take(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "fused":
            self.records.append(message)
            self._print(json.dumps(message) if self.as_json else digest_line(self.stream, message))
            if self.bar is not None:
                self.bar.at(message["window"]["end"])
        elif kind == "event":
            self.events.append(message)
            self._print(json.dumps(message) if self.as_json else event_line(message))
        elif kind == "status" and "previous" not in message:  # the stream's last word
            self.final = message
            self.finished.set()
            self.stop()


def probe(path: str) -> tuple[bool, bool]:
    """(has video, has audio); OSError/av.FFmpegError with FFmpeg's reason otherwise."""
    video, audio, _ = probe_media(path)
    return video, audio


def probe_media(path: str) -> tuple[bool, bool, float | None]:
    """(has video, has audio, duration in seconds if the container says)."""
    if not Path(path).exists():
        raise OSError("no such file")
    if not Path(path).is_file():
        raise OSError("not a regular file")
    with av.open(path, timeout=10.0) as container:
        video, audio = bool(container.streams.video), bool(container.streams.audio)
        duration = container.duration / 1_000_000 if container.duration else None
    if not (video or audio):
        raise ValueError("no audio or video stream in it")
    return video, audio, duration


def run(
    path: str,
    config_path: str | None,
    as_json: bool,
    progress: str = "auto",
    snapshots_dir: str | None = None,
) -> int:
    try:
        video, audio, duration = probe_media(path)
    except (OSError, ValueError, av.FFmpegError) as exc:
        print(f"tandem: {path}: cannot analyze: {_reason(exc)}", file=sys.stderr)
        return EXIT_FAILED
    try:
        config = _config(config_path, path, video, audio, snapshots_dir)
    except ConfigError as exc:
        print(exc.lines("tandem: "), file=sys.stderr)
        return EXIT_CONFIG
    from daemon.core.service import Tandemd
    from daemon.core.startup import StartupError
    from daemon.runtime.logs import setup_logging

    setup_logging("warning", "tandem-analyze")
    logging.getLogger().setLevel(logging.WARNING)
    registry = CollectorRegistry()
    try:
        service = Tandemd(config, registry)
    except StartupError as exc:
        print(f"tandem: {exc}", file=sys.stderr)
        return EXIT_FAILED
    stream = config.streams[0].id
    collector = _Collector(
        service.results_endpoint,
        stream,
        as_json,
        service.request_stop,
        Progress(stream, duration) if show_progress(progress, sys.stderr) else None,
    )
    collector.start()
    try:
        service.run()
    finally:
        collector.finished.set()
        collector.join(5)
        shutil.rmtree(config.runtime_dir, ignore_errors=True)
    [view] = [s for s in service.snapshot().streams if s.id == stream]
    summary = _summary(registry, view.av_offset, stream, collector)
    print(json.dumps(summary) if as_json else _summary_text(summary))
    if collector.final is None or collector.final["state"] != "ended":
        detail = collector.final["detail"] if collector.final else "no end of stream seen"
        print(f"tandem: {path}: cannot analyze: {detail}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _config(
    config_path: str | None, path: str, video: bool, audio: bool, snapshots_dir: str | None
) -> Any:
    source = Path(config_path) if config_path else DEFAULT_CONFIG
    if config_path and not source.is_file():  # a typo must not quietly mean the defaults
        raise ConfigError(f"{source}: cannot read: no such file")
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8")) if source.exists() else {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from exc
    base: dict[str, Any] = next(iter(raw.get("streams", [])), {})
    carried = ("fps", "width", "height", "audio_rate", "audio_chunk_ms", "track", "zones", "lines")
    stream: dict[str, Any] = {k: base[k] for k in carried if k in base}
    stream |= {
        "id": _stream_id(path),
        "url": str(Path(path).resolve()),
        "mode": "file",
        "pace": "none",
        "video": video,
        "audio": audio,
        "queue": max(int(base.get("queue", 8)), 8),
    }
    raw |= {
        "streams": [stream],
        "runtime_dir": tempfile.mkdtemp(prefix="tandem-analyze-"),
        "publish": {"endpoint": f"tcp://127.0.0.1:{_free_port()}"},
        "metrics": {"enabled": False},
        "log": {"level": "warning", "digest_s": 0},
    }
    raw.pop("control", None)
    # Snapshots outlive the run only in a directory the user named (--snapshots, or the
    # config's): the run's own directory is deleted at its end.
    snapshots = dict(raw.get("snapshots", {}))
    if snapshots_dir:
        snapshots["directory"] = snapshots_dir
    snapshots["enabled"] = bool(snapshots.get("directory")) and snapshots.get("enabled", True)
    raw["snapshots"] = snapshots
    return parse_config(raw, source=str(source))


def _summary(
    registry: CollectorRegistry,
    av_offset: dict[str, Any] | None,
    stream: str,
    collector: _Collector,
) -> dict[str, Any]:
    decode_errors = registry.get_sample_value("tandem_decode_errors_total", {"stream": stream})
    corrupt = registry.get_sample_value("tandem_corrupt_packets_total", {"stream": stream})
    counts: dict[str, int] = {}
    for event in collector.events:
        if event["edge"] == "start":
            counts[event["name"]] = counts.get(event["name"], 0) + 1
    records = collector.records
    return {
        "type": "summary",
        "stream": stream,
        "frames": sum((r["video"] or {}).get("results", 0) for r in records),
        "audio_chunks": sum((r["audio"] or {}).get("results", 0) for r in records),
        "windows": len(records),
        "partial_windows": sum(1 for r in records if r["partial"]),
        "decode_errors": int(decode_errors or 0),
        "corrupt_packets": int(corrupt or 0),
        "events": counts,
        "av_offset": av_offset,
        "state": collector.final["state"] if collector.final else None,
    } | _scene_summary(records, collector.events)


def _scene_summary(records: list[dict[str, Any]], events: list[dict[str, Any]]) -> dict[str, Any]:
    """Tracks, zone and line counts, transcript and snapshot paths over the whole file."""
    tracks: dict[int, dict[str, Any]] = {}
    zones: dict[str, dict[str, int]] = {}
    lines: dict[str, dict[str, int]] = {}
    text: list[str] = []
    segments: list[dict[str, Any]] = []
    for record in records:
        for track in record.get("tracks", []):
            tracks[track["id"]] = {
                k: track[k]
                for k in ("id", "label", "analyzer", "first_seen", "last_seen", "best_score")
            }
        for zone, labels in record.get("zones", {}).items():
            most = zones.setdefault(zone, {})
            for label, n in labels.items():
                most[label] = max(most.get(label, 0), n)
        for line, counts in record.get("lines", {}).items():
            lines[line] = {"in": counts["in_total"], "out": counts["out_total"]}
        transcript = record.get("transcript") or {}
        if transcript.get("text"):
            text.append(transcript["text"])
            segments.extend(transcript["segments"])
    entries: dict[str, int] = {}
    for event in events:
        if event["name"] == "zone_enter":
            entries[event["zone"]] = entries.get(event["zone"], 0) + 1
    return {
        "tracks": sorted(tracks.values(), key=lambda t: t["id"]),
        "zones": {
            z: {"most_at_once": most, "entries": entries.get(z, 0)} for z, most in zones.items()
        },
        "lines": lines,
        "transcript": {"text": " ".join(text) or None, "segments": segments} if text else None,
        "snapshots": [e["snapshot"] for e in events if e.get("snapshot")],
    }


def _summary_text(s: dict[str, Any]) -> str:
    events = ", ".join(f"{k} x{v}" for k, v in sorted(s["events"].items())) or "none"
    offset = s["av_offset"]
    sync = (
        f"{offset['offset_s'] * 1000:+.0f} ms (confidence {offset['confidence']:.2f})"
        if offset
        else "not measured"
    )
    labels: dict[str, int] = {}
    for track in s["tracks"]:
        labels[track["label"]] = labels.get(track["label"], 0) + 1
    tracked = ", ".join(f"{n} {label}" for label, n in sorted(labels.items())) or "none"
    text = (
        f"{s['stream']}: {s['frames']} frames, {s['audio_chunks']} audio chunks, "
        f"{s['windows']} windows ({s['partial_windows']} partial), "
        f"damage: {s['decode_errors']} decode errors, {s['corrupt_packets']} corrupt packets "
        f"skipped, events: {events}, A/V offset: {sync}, tracks: {tracked}"
    )
    for line, counts in s["lines"].items():
        text += f", line {line}: {counts['in']} in, {counts['out']} out"
    for zone, z in s["zones"].items():
        text += f", zone {zone}: {z['entries']} entries"
    if s["transcript"]:
        text += f", transcript: {s['transcript']['text']!r}"
    if s["snapshots"]:
        text += f", {len(s['snapshots'])} snapshots in {Path(s['snapshots'][0]).parent}"
    return text


def _stream_id(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", Path(path).stem)[:64] or "file"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _reason(exc: BaseException) -> str:
    if isinstance(exc, av.FFmpegError):
        return exc.strerror or str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
