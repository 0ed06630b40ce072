"""Vision worker throughput vs the bare model forward, same batches, same precision.

A random-weight DETR (ResNet backbone) built from a config and saved with
save_pretrained, loaded through the worker's own code. "worker" is the worker's batch
path: uint8 RGB frames of several streams -> BatchRunner.run -> one result dict per
frame (staging, device copy, conversion, normalization, the forward, post-processing).
"bare forward" is `model(pixel_values=...)` on a tensor already prepared on the device.
Ratio = worker / bare: 1.0 means the worker adds nothing to the model's own cost.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from prometheus_client import CollectorRegistry

from bench.core import Row, Stopwatch, best_of, rate, row
from daemon.workers.analyzers import WorkItem, build
from daemon.workers.batching import BatchRunner
from daemon.workers.device import Precision, Runtime, inference, make_runtime
from daemon.workers.metrics import WorkerMetrics

HEIGHT, WIDTH = 360, 640


def save_detr(path: Path) -> Path:
    from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig

    backbone = ResNetConfig(
        embedding_size=32, hidden_sizes=[32, 64, 128, 256], depths=[1, 1, 1, 1],
        out_features=["stage4"],
    )  # fmt: skip
    config = DetrConfig(
        use_timm_backbone=False, use_pretrained_backbone=False, backbone_config=backbone,
        d_model=128, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=256, decoder_ffn_dim=256, num_queries=50,
    )  # fmt: skip
    DetrForObjectDetection(config).save_pretrained(path)
    return path


def frames(n: int) -> list[WorkItem]:
    gen = torch.Generator().manual_seed(n)
    return [
        WorkItem(f"cam{i % 8}", "video", i, i * 0.2,
                 torch.randint(0, 256, (HEIGHT, WIDTH, 3), dtype=torch.uint8, generator=gen))
        for i in range(n)
    ]  # fmt: skip


def measure(runtime: Runtime, model_dir: Path, batch: int, rounds: int) -> tuple[float, float]:
    """(worker frames/s, bare forward frames/s) at this batch size."""
    (detector,) = build(["objects"], "video", {"objects": {"model": str(model_dir)}}, runtime)
    runner = BatchRunner([detector], runtime, WorkerMetrics(CollectorRegistry()))
    items = frames(batch)
    model = detector.model  # type: ignore[attr-defined]
    pixels = detector.prep([i.tensor for i in items], None)  # type: ignore[attr-defined]

    def worker() -> float:
        with Stopwatch() as sw:
            for _ in range(rounds):
                runner.run(items)
        return rate(rounds * batch, sw.seconds)

    def bare() -> float:
        with Stopwatch() as sw, inference(runtime):
            for _ in range(rounds):
                out = model(pixel_values=pixels)
                out.logits.float().cpu()  # wait for the device, as the worker does
        return rate(rounds * batch, sw.seconds)

    worker(), bare()  # warm-up
    return best_of(3, worker), best_of(3, bare)


def rows_for(device: str, precision: Precision, quick: bool) -> list[Row]:
    runtime = make_runtime(device, precision)
    out: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_detr(Path(tmp) / "detr")
        for batch in (1, 8, 32):
            rounds = max(1, (8 if quick else 32) // batch)
            ours, reference = measure(runtime, model_dir, batch, rounds)
            out.append(
                row(
                    f"vision worker DETR batch {batch} {runtime.device.type} {precision}",
                    ours,
                    "frames/s",
                    "bare model forward, same batch and precision",
                    reference,
                )
            )
    return out


def run(quick: bool) -> list[Row]:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    return rows_for("cpu", "fp32", quick)
