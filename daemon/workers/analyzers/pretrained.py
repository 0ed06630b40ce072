"""Load transformers models for analyzers: from a local directory, or a hub id found in
the local cache. The network is used only when the operator set allow_download."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ModelNotAvailableError(ValueError):
    """The configured model is neither a local directory nor in the local cache."""


def load(loader: Any, model: str, allow_download: bool, **kwargs: Any) -> Any:
    """`loader.from_pretrained(model)` without touching the network unless allowed."""
    from transformers.utils import logging as hf_logging

    quiet: Any = hf_logging.disable_progress_bar  # untyped upstream
    quiet()  # a worker logs lines, not progress bars
    local = Path(model).expanduser()
    source = str(local) if local.is_dir() else model
    if not local.is_dir() and (model.startswith(("/", ".", "~")) or local.exists()):
        raise ModelNotAvailableError(f"model: {model!r} is not a directory")
    try:
        return loader.from_pretrained(source, local_files_only=not allow_download, **kwargs)
    except OSError as exc:
        hint = "" if allow_download else " (downloads are off: set allow_download = true)"
        raise ModelNotAvailableError(f"model: cannot load {model!r}{hint}: {exc}") from None
