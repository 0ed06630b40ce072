"""Loading Hugging Face transformers models for the model-backed analyzers, and getting
frames into them on the device.

Models load from a local directory (saved with `save_pretrained`) or the local Hugging
Face cache, with `local_files_only=True` unless the analyzer's `allow_download` is set.
Preprocessing reads `preprocessor_config.json` as plain JSON (mean, std, sizes) and
does the work with torch on the worker's device: the frames of a batch are stacked in
pinned host memory, copied without blocking, then converted to float, resized and
normalized there. transformers' image processors are not used: they need PIL and
torchvision, and work per image in numpy.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import torch
from torch.nn import functional

from daemon.workers.analyzers.model_specs import ModelOptions
from daemon.workers.device import Runtime

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelLoadError(ValueError):
    """The model is not where the options say, or not of a kind the analyzer runs."""


def load_model(options: ModelOptions, auto_class: Any, runtime: Runtime) -> Any:
    """The model in eval mode on the runtime's device (compiled if asked)."""
    try:
        model = auto_class.from_pretrained(
            options.model,
            revision=options.revision,
            local_files_only=not options.allow_download,
        )
    except (OSError, ValueError) as exc:
        hint = "" if options.allow_download else " (downloads are off: allow_download = false)"
        raise ModelLoadError(f"model {options.model!r}: cannot load{hint}: {exc}") from None
    model = model.to(runtime.device).eval()
    if runtime.compile:
        model.forward = torch.compile(model.forward)
    return model


def preprocessor_config(options: ModelOptions) -> dict[str, Any]:
    """The model's preprocessor_config.json, or {} when it has none."""
    from transformers.utils.hub import cached_file

    try:
        path = cached_file(
            options.model,
            "preprocessor_config.json",
            revision=options.revision,
            local_files_only=not options.allow_download,
        )
    except OSError:
        return {}
    if path is None:
        return {}
    with open(path, encoding="utf-8") as f:
        loaded: dict[str, Any] = json.load(f)
    return loaded


def fixed_size(config: dict[str, Any], key: str = "size") -> tuple[int, int] | None:
    """(height, width) when the processor config names one, else None."""
    size = config.get(key)
    if isinstance(size, dict) and "height" in size and "width" in size:
        return int(size["height"]), int(size["width"])
    if isinstance(size, int):
        return size, size
    return None


def normalizes(config: dict[str, Any]) -> bool:
    """Whether the processor subtracts the mean and divides by the std: its
    do_normalize, else its class's default (off only for RT-DETR's)."""
    processor = str(config.get("image_processor_type", ""))
    return bool(config.get("do_normalize", not processor.startswith("RTDetr")))


def center_crops(config: dict[str, Any]) -> bool:
    """Whether the processor keeps the aspect ratio and crops the centre to a square (CLIP,
    ConvNeXt) rather than squashing the frame to its size (ViT, SigLIP)."""
    if "do_center_crop" in config:
        return bool(config["do_center_crop"])
    size = config.get("size")
    shortest = isinstance(size, dict) and "shortest_edge" in size
    return shortest or "crop_size" in config or "crop_pct" in config


class FramePrep:
    """uint8 H x W x 3 frames -> normalized float N x 3 x h x w on the device."""

    def __init__(self, runtime: Runtime, config: dict[str, Any]) -> None:
        self.runtime = runtime
        device = runtime.device
        mean = config.get("image_mean", IMAGENET_MEAN)
        std = config.get("image_std", IMAGENET_STD)
        if not normalizes(config):  # RT-DETR takes pixels in 0..1 as they are
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        rescales = config.get("do_rescale", True)
        self.rescale = float(config.get("rescale_factor", 1 / 255)) if rescales else 1.0
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self._staging: OrderedDict[tuple[int, ...], torch.Tensor] = OrderedDict()

    def __call__(
        self, frames: list[torch.Tensor], size: tuple[int, int] | None, crop: bool = False
    ) -> torch.Tensor:
        """`size` (h, w): resize to it, or with `crop` resize the short side to fit and
        take the centre (as CLIP's processor does); None keeps the frame's size."""
        batch = self._to_device(frames).permute(0, 3, 1, 2).to(torch.float32)
        if size is not None and tuple(batch.shape[2:]) != size:
            batch = _resize(batch, size, crop)
        return (batch * self.rescale - self.mean) / self.std

    def _to_device(self, frames: list[torch.Tensor]) -> torch.Tensor:
        if not self.runtime.is_cuda:
            return torch.stack(frames)
        shape = (len(frames), *frames[0].shape)
        staging = self._staging.get(shape)
        if staging is None:
            staging = torch.empty(shape, dtype=torch.uint8).pin_memory()
            self._staging[shape] = staging
            while len(self._staging) > 8:  # a few batch sizes x input sizes, bounded
                self._staging.popitem(last=False)
        self._staging.move_to_end(shape)
        # Reusing the buffer is safe: a batch's outputs are copied back to the host
        # (which waits for the device) before the next batch is staged.
        torch.stack(frames, out=staging)
        return staging.to(self.runtime.device, non_blocking=True)


def _resize(batch: torch.Tensor, size: tuple[int, int], crop: bool) -> torch.Tensor:
    h, w = batch.shape[2:]
    if not crop:
        return functional.interpolate(batch, size=size, mode="bilinear", antialias=True)
    scale = max(size[0] / h, size[1] / w)
    scaled = (max(size[0], round(h * scale)), max(size[1], round(w * scale)))
    batch = functional.interpolate(batch, size=scaled, mode="bilinear", antialias=True)
    top, left = (scaled[0] - size[0]) // 2, (scaled[1] - size[1]) // 2
    return batch[:, :, top : top + size[0], left : left + size[1]]
