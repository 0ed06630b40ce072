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
    if record["latency_s"] is not None:
        parts.append(f"latency={record['latency_s']:.2f}s")
    return "  ".join(parts)
