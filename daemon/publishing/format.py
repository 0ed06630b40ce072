"""Human-readable one-line renderings of published records."""

from __future__ import annotations

from typing import Any


def digest_line(stream: str, record: dict[str, Any]) -> str:
    """One human line for a fused record: `cam  12.0-13.0s  motion.score=0.04 ...`, with
    each analyzer's first output (its headline); `--json` shows everything."""
    w = record["window"]
    parts = [f"{stream}", f"{w['start']:.1f}-{w['end']:.1f}s"]
    for modality in ("video", "audio"):
        block = record.get(modality)
        if not block:
            continue
        for analyzer, fields in block["analyzers"].items():
            for name, stats in list(fields.items())[:1]:
                parts.append(f"{analyzer}.{name}={stats['mean']:.3g}")
    if record["missing"]:
        parts.append("missing=" + ",".join(record["missing"]))
    active = [e["name"] for e in record.get("events", []) if e["end"] is None]
    if active:
        parts.append("events=" + ",".join(active))
    if record.get("av_sync"):
        parts.append(f"av_offset={record['av_sync']['offset_s'] * 1000:+.0f}ms")
    if record["latency_s"] is not None:
        parts.append(f"latency={record['latency_s']:.2f}s")
    return "  ".join(parts)


def event_line(event: dict[str, Any]) -> str:
    """One human line for an event: `cam  event black start 12.40 s` (and its end)."""
    line = f"{event['stream']}  event {event['name']} {event['edge']} {event['start']:.2f} s"
    if event["end"] is not None:
        line += f" to {event['end']:.2f} s ({event['duration_s']:.2f} s)"
    return line
