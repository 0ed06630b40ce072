"""Run a gathered batch of items through every analyzer.

Batching analyzers get the items grouped by input size (one forward per group); the
others see the items one by one in arrival order, so per-stream state stays in order.
When the accelerator runs out of memory, the batch is halved and both halves retried
(counted); a single item that still does not fit is answered with the error. One
analyzer's failure never loses the other analyzers' outputs.

Without a `Runtime` (a worker none of whose analyzers uses torch) nothing here imports
torch: no inference mode to enter, and no exception can be torch's out-of-memory error.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from daemon.runtime.logs import RATE_LIMITED
from daemon.wire.protocol import JsonValue
from daemon.workers.analyzers import Analyzer, WorkItem
from daemon.workers.analyzers.base import BatchAnalyzer, WarmsUp
from daemon.workers.metrics import WorkerMetrics

if TYPE_CHECKING:
    from daemon.workers.device import Runtime

log = logging.getLogger("worker")
Outputs = dict[str, JsonValue]


@dataclass
class Answer:
    """Every analyzer's outputs for one item, and the errors of those that failed."""

    outputs: dict[str, Outputs] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class BatchRunner:
    def __init__(
        self, analyzers: list[Analyzer], runtime: Runtime | None, metrics: WorkerMetrics
    ) -> None:
        self.analyzers = analyzers
        self.runtime = runtime  # None: no analyzer uses torch
        self.metrics = metrics
        metrics.seed([analyzer.name for analyzer in analyzers])

    def _mode(self) -> contextlib.AbstractContextManager[None]:
        """torch's inference mode (and autocast) where there is a runtime."""
        if self.runtime is None:
            return contextlib.nullcontext()
        from daemon.workers.device import inference  # torch is loaded: the runtime holds it

        return inference(self.runtime)

    def warmup(self, batch_size: int) -> None:
        with self._mode():
            for analyzer in self.analyzers:
                if isinstance(analyzer, WarmsUp):
                    started = time.perf_counter()
                    analyzer.warmup(batch_size)
                    log.info("warmed up %s in %.2f s", analyzer.name, time.perf_counter() - started)

    def run(self, items: list[WorkItem]) -> list[Answer]:
        answers = [Answer() for _ in items]
        # An on-demand analyzer sees only the items of streams it is switched on for.
        work = [
            (analyzer, wanted)
            for analyzer in self.analyzers
            if (wanted := [i for i, item in enumerate(items) if analyzer.name not in item.skip])
        ]
        if work:  # entering inference mode costs more than a short batch's transport
            with self._mode():
                for analyzer, wanted in work:
                    self._run_analyzer(analyzer, items, wanted, answers)
            if self.runtime is not None and self.runtime.is_cuda:
                self.metrics.accelerator_memory.set(self.runtime.memory_bytes())
        self.metrics.items.inc(len(items))
        return answers

    def _run_analyzer(
        self, analyzer: Analyzer, items: list[WorkItem], wanted: list[int], answers: list[Answer]
    ) -> None:
        started = time.perf_counter()
        if isinstance(analyzer, BatchAnalyzer):
            for group in _by_input_size(items, wanted):
                results = self._batched(analyzer, [items[i] for i in group])
                for i, result in zip(group, results, strict=True):
                    self._store(answers[i], analyzer.name, result, items[i])
        else:
            for i in wanted:
                result = self._single(analyzer, items[i])
                self._store(answers[i], analyzer.name, result, items[i])
            # One item per call: its batch size is 1, once per item.
            batch_size = self.metrics.batch_size.labels(analyzer.name)
            for _ in wanted:
                batch_size.observe(1)
        self.metrics.inference.labels(analyzer.name).observe(time.perf_counter() - started)

    def _single(self, analyzer: Analyzer, item: WorkItem) -> Outputs | Exception:
        try:
            return analyzer.analyze(item)
        except Exception as exc:  # one analyzer's bug must not lose the others' results
            return exc

    def _batched(self, analyzer: BatchAnalyzer, items: list[WorkItem]) -> list[Outputs | Exception]:
        try:
            results: list[Outputs | Exception] = list(analyzer.analyze_batch(items))
        except Exception as exc:
            if not _out_of_memory(exc):
                return [exc] * len(items)
            self._free_accelerator_memory()
            if len(items) == 1:
                return [exc]
            self.metrics.oom_retries.labels(analyzer.name).inc()
            half = len(items) // 2
            log.warning(
                "%s ran out of accelerator memory on %d items: retrying as %d + %d",
                analyzer.name,
                len(items),
                half,
                len(items) - half,
            )
            return self._batched(analyzer, items[:half]) + self._batched(analyzer, items[half:])
        self.metrics.batch_size.labels(analyzer.name).observe(len(items))
        if len(results) != len(items):
            bad = ValueError(f"analyze_batch returned {len(results)} outputs for {len(items)}")
            return [bad] * len(items)
        return results

    def _store(
        self, answer: Answer, name: str, result: Outputs | Exception, item: WorkItem
    ) -> None:
        if isinstance(result, Exception):
            log.error(
                "%s failed on %s#%d: %s: %s",
                name,
                item.stream,
                item.seq,
                type(result).__name__,
                result,
                extra=RATE_LIMITED,
            )
            self.metrics.errors.labels(name).inc()
            answer.errors[name] = f"{type(result).__name__}: {result}"
        else:
            answer.outputs[name] = result
            if result.get("gated") is True:
                self.metrics.gated.labels(name).inc()
            elif (unseen := _unseen_pixels(result, item)) is not None:
                self.metrics.region_frames.labels(name).inc()
                self.metrics.region_pixels_saved.labels(name).inc(unseen)

    def _free_accelerator_memory(self) -> None:
        if self.runtime is not None and self.runtime.is_cuda:
            import torch

            torch.cuda.empty_cache()


def _out_of_memory(exc: Exception) -> bool:
    """Whether torch raised it for want of accelerator memory (never, without torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError)


def _unseen_pixels(result: Outputs, item: WorkItem) -> int | None:
    """Pixels of the item outside what a model saw: `regions` (the camera-motion gate's
    parts; where grown crops overlap, counted twice: the saving understated) else
    `region` ([x0, y0, x1, y1] in 0..1); None when it saw the whole frame."""
    parts = result.get("regions")
    seen = parts if isinstance(parts, list) else [result.get("region")]
    rects = [r for r in seen if isinstance(r, list) and len(r) == 4]
    if not rects:
        return None
    area = 0.0
    for rect in rects:
        x0, y0, x1, y1 = (float(v) if isinstance(v, int | float) else 0.0 for v in rect)
        area += (x1 - x0) * (y1 - y0)
    height, width = item.data.shape[:2]
    return round(height * width * max(0.0, 1 - area))


def _by_input_size(items: list[WorkItem], indices: list[int]) -> list[list[int]]:
    """Those indices of the items grouped by tensor shape, each group in arrival order."""
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i in indices:
        groups[tuple(items[i].data.shape)].append(i)
    return list(groups.values())
