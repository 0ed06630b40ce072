"""What every benchmark section returns: rows measured against a reference in the same run."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    """One measurement and its reference, taken in the same run on the same machine.

    `ratio` is value / reference_value, oriented so that higher is better for throughput
    rows (ours / reference) and stated in `unit` otherwise.
    """

    metric: str
    value: float
    unit: str
    reference: str
    reference_value: float
    ratio: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def row(metric: str, value: float, unit: str, reference: str, reference_value: float) -> Row:
    ratio = value / reference_value if reference_value else float("nan")
    return Row(metric, round(value, 4), unit, reference, round(reference_value, 4), round(ratio, 3))


def best_of(runs: int, fn: Callable[[], float]) -> float:
    """The best (highest) of `runs` throughput measurements: the least disturbed one."""
    return max(fn() for _ in range(runs))


def median_pair(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """Of (reference, ours) throughputs measured back to back, the pair whose ratio is the
    median (the higher middle one for an even count).

    For sections whose two sides each swing by a quarter between runs: the best of each
    side then compares one side's rare fast run with the other's usual one. A pair shares
    the machine's state of the moment (another tenant's load on the host comes and goes
    over minutes), and the median of their ratios ignores the odd disturbed pair on either
    side."""
    return sorted(pairs, key=lambda p: p[1] / p[0])[len(pairs) // 2]


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def markdown(rows: list[Row]) -> str:
    head = (
        "| metric | value | unit | reference | reference value | ratio |\n|---|---|---|---|---|---|"
    )
    lines = [
        f"| {r.metric} | {r.value:g} | {r.unit} | {r.reference} "
        f"| {r.reference_value:g} | {r.ratio:g} |"
        for r in rows
    ]
    return "\n".join([head, *lines])
