"""Analyzer plugins. See `base` for the interface and `registry` for lookup."""

from daemon.workers.analyzers.base import (
    Analyzer,
    AnalyzerSpec,
    Modality,
    NoOptions,
    Options,
    UnknownAnalyzerError,
    WorkItem,
)
from daemon.workers.analyzers.registry import (
    available,
    build,
    check_names,
    spec_for,
    specs,
    validate_options,
)

__all__ = [
    "Analyzer",
    "AnalyzerSpec",
    "Modality",
    "NoOptions",
    "Options",
    "UnknownAnalyzerError",
    "WorkItem",
    "available",
    "build",
    "check_names",
    "spec_for",
    "specs",
    "validate_options",
]
