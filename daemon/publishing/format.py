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
    if record.get("tracks"):
        parts.append(f"tracks={len(record['tracks'])}")
    for zone, labels in (record.get("zones") or {}).items():
        parts.extend(f"{zone}.{label}={n}" for label, n in labels.items())
    for line, counts in (record.get("lines") or {}).items():
        parts.append(f"{line}=in:{counts['in_total']},out:{counts['out_total']}")
    if record["latency_s"] is not None:
        parts.append(f"latency={record['latency_s']:.2f}s")
    return "  ".join(parts)


def event_line(event: dict[str, Any]) -> str:
    """One human line for an event: `cam  event black start 12.40 s` (and its end)."""
    line = f"{event['stream']}  event {event['name']} {event['edge']} {event['start']:.2f} s"
    if event["edge"] == "instant":
        where = event.get("line") or event.get("zone") or ""
        line += f"  track {event['track_id']} {event['label']} {event.get('direction', '')}"
        line = f"{line.rstrip()} {where}".rstrip()
        if event.get("dwell_s") is not None:
            line += f" after {event['dwell_s']:.1f} s"
    elif event["end"] is not None:
        line += f" to {event['end']:.2f} s ({event['duration_s']:.2f} s)"
    return line


def detections_line(record: dict[str, Any]) -> str:
    """One human line for a per-item record: what each analyzer found in it."""
    head = f"{record['stream']}  {record['modality']} #{record['seq']} {record['pts']:.2f}s"
    parts = [head]
    for analyzer, outputs in record["outputs"].items():
        parts.append(f"{analyzer}: {_found(outputs)}")
    parts.extend(f"{analyzer}: error {error}" for analyzer, error in record["errors"].items())
    return "  ".join(parts)


def _found(outputs: dict[str, Any]) -> str:
    if outputs.get("gated") is True:
        return "gated"
    boxes = outputs.get("boxes")
    if isinstance(boxes, list):
        labels = outputs.get("labels") or []
        named = f" ({', '.join(map(str, labels[:4]))})" if labels else ""
        return f"{len(boxes)} box{'es' if len(boxes) != 1 else ''}{named}"
    if isinstance(outputs.get("text"), str):
        return repr(outputs["text"])
    for key, value in outputs.items():  # the headline: the first output
        return f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}"
    return "-"
