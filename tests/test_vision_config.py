"""Vision worker settings: config validation naming the key, devices per local worker,
GPU counting without torch, device resolution, and a worker process refusing a device
this machine lacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from daemon.config import ConfigError, parse_config
from daemon.workers.device import DeviceError, make_runtime, resolve_device
from daemon.workers.gpus import local_workers, visible_gpus
from tests.conftest import ROOT

no_cuda = not torch.cuda.is_available()


def vision(**pool: object) -> dict[str, object]:
    return {"workers": {"vision": {"analyzers": ["motion"], **pool}}}


@pytest.mark.parametrize(
    ("pool", "message"),
    [
        ({"max_batch": 8}, "workers.vision: max_batch: 8 exceeds capacity 4"),
        ({"device": "gpu"}, "workers.vision.device = 'gpu'"),
        ({"precision": "fp8"}, "workers.vision.precision = 'fp8'"),
        ({"memory_fraction": 0}, "workers.vision.memory_fraction = 0"),
        (
            {"analyzers": ["objects"], "options": {"objects": {"model": "m", "gate": "sound"}}},
            "workers.vision.options.objects.gate",
        ),
        ({"analyzers": ["objects"]}, "workers.vision.options.objects.model"),
        ({"options": {"black": {"pixel_threshold": 2}}}, "'black' is not in analyzers"),
    ],
)
def test_bad_vision_settings_name_the_key(pool: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_config(vision(**pool))


def test_good_vision_settings_load() -> None:
    config = parse_config(
        vision(
            analyzers=["motion", "black", "frozen", "scene", "blur", "faces", "persons"],
            capacity=16,
            max_batch=8,
            max_wait_ms=10,
            device="cuda:1",
            precision="bf16",
            memory_fraction=0.5,
            options={"black": {"min_duration_s": 1.0}, "frozen": {"noise": 0.003}},
        )
    )
    assert config.workers.vision.max_batch == 8
    assert config.workers.vision.count == "per_gpu"
    assert config.workers.audio.count == "auto"


def test_local_workers_one_per_gpu_by_default() -> None:
    vision = parse_config({}).workers.vision
    assert vision.processes == max(visible_gpus(), 1)  # at least one, also without a GPU
    assert local_workers(1, "auto", gpus=0) == ["auto"]
    assert local_workers(2, "auto", gpus=2) == ["cuda:0", "cuda:1"]
    assert local_workers(3, "cuda", gpus=2) == ["cuda:0", "cuda:1", "cuda:0"]
    assert local_workers(2, "cuda:1", gpus=2) == ["cuda:1", "cuda:1"]
    assert local_workers(2, "cpu", gpus=2) == ["cpu", "cpu"]


def test_visible_gpus_reads_the_driver_and_cuda_visible_devices(tmp_path: Path) -> None:
    for n in range(3):
        (tmp_path / f"0000:0{n}:00.0").mkdir()
    assert visible_gpus({}, tmp_path) == 3
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1"}, tmp_path) == 1
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}, tmp_path) == 0
    assert visible_gpus({}, tmp_path / "absent") == 0


def test_auto_device_and_precision_on_this_machine() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert make_runtime("cpu", "bf16").dtype == torch.bfloat16
    with pytest.raises(DeviceError, match="use auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")


@pytest.mark.skipif(not no_cuda, reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(DeviceError, match="has 0 CUDA device"):
        resolve_device("cuda")


@pytest.mark.skipif(no_cuda, reason="needs a CUDA GPU")
def test_cuda_runtime_reports_memory() -> None:
    runtime = make_runtime("cuda", "fp16", memory_fraction=0.5)
    keep = torch.ones(1024, 1024, device=runtime.device)
    assert runtime.memory_bytes() >= keep.numel() * 4


@pytest.mark.slow
def test_worker_process_exits_2_naming_a_missing_model(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "daemon.workers",
            "--kind",
            "vision",
            "--endpoint",
            f"ipc://{tmp_path}/none.sock",
            "--analyzers",
            "objects",
            "--options",
            '{"objects": {"model": "tandem-tests/absent"}}',
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "tandem-tests/absent" in done.stderr and "allow_download = false" in done.stderr
