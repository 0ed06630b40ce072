"""Per-window summaries of analyzer outputs: min, mean and max of every numeric field."""

from __future__ import annotations

from typing import Any

from daemon.wire.protocol import Result


def summarize(results: list[Result]) -> dict[str, dict[str, dict[str, float]]]:
    values: dict[str, dict[str, list[float]]] = {}
    for result in results:
        for analyzer, fields in result.outputs.items():
            per_field = values.setdefault(analyzer, {})
            for name, value in fields.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    per_field.setdefault(name, []).append(float(value))
                elif isinstance(value, bool):
                    per_field.setdefault(name, []).append(1.0 if value else 0.0)
    return {
        analyzer: {name: _stats(series) for name, series in fields.items()}
        for analyzer, fields in values.items()
    }


def _stats(series: list[float]) -> dict[str, float]:
    return {
        "min": round(min(series), 6),
        "mean": round(sum(series) / len(series), 6),
        "max": round(max(series), 6),
    }


def error_counts(results: list[Result]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        for analyzer in result.errors:
            counts[analyzer] = counts.get(analyzer, 0) + 1
    return counts


JsonObject = dict[str, Any]
