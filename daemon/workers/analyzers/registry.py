"""Find analyzers by name: the built-ins, then plugins from the `tandem.analyzers`
entry point group. Validates options without importing analyzer code."""

from __future__ import annotations

import importlib
import logging
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from daemon.workers.analyzers.base import (
    Analyzer,
    AnalyzerSpec,
    Modality,
    Options,
    UnknownAnalyzerError,
)
from daemon.workers.analyzers.gate_options import GateOptions
from daemon.workers.analyzers.specs import BUILTIN_SPECS

if TYPE_CHECKING:
    from daemon.workers.device import Runtime

log = logging.getLogger("analyzers")
ENTRY_POINT_GROUP = "tandem.analyzers"


@cache
def specs() -> dict[str, AnalyzerSpec]:
    found = {spec.name: spec for spec in BUILTIN_SPECS}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = ep.load()
        except Exception as exc:  # a broken plugin must not take the built-ins down
            log.error("analyzer plugin %s (%s) failed to load: %s", ep.name, ep.value, exc)
            continue
        if not isinstance(spec, AnalyzerSpec) or spec.name in found:
            log.error("analyzer plugin %s: not an AnalyzerSpec, or its name is taken", ep.name)
            continue
        found[spec.name] = spec
    return found


def available(modality: Modality) -> list[str]:
    return sorted(n for n, s in specs().items() if s.modality == modality)


def spec_for(name: str, modality: Modality) -> AnalyzerSpec:
    spec = specs().get(name)
    if spec is None or spec.modality != modality:
        raise UnknownAnalyzerError(
            f"unknown {modality} analyzer {name!r}; available: {', '.join(available(modality))}"
        )
    return spec


def check_names(names: list[str], modality: Modality) -> None:
    for name in names:
        spec_for(name, modality)


def validate_options(name: str, modality: Modality, raw: dict[str, Any]) -> Options:
    """The analyzer's options from config, validated; raises ValueError naming the key."""
    spec = spec_for(name, modality)
    try:
        return spec.options.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if not key:  # a validator across keys names its key in the message
            raise ValueError(f"{name}.{message}") from None
        raise ValueError(f"{name}.{key}: {message}") from None


def build(
    names: list[str],
    modality: Modality,
    options: dict[str, dict[str, Any]] | None = None,
    runtime: Runtime | None = None,
) -> list[Analyzer]:
    """Instantiate the named analyzers with their options (imports their code).

    Analyzers that prefer an accelerator also get the worker's runtime (default: CPU,
    fp32), so each loads its model once, on the worker's device. One whose options
    derive from `GateOptions` and that does not gate itself goes behind the motion gate
    (gated.py).
    """
    options = options or {}
    out: list[Analyzer] = []
    for name in names:
        spec = spec_for(name, modality)
        validated = validate_options(name, modality, options.get(name, {}))
        module, _, attr = spec.factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
        if spec.device == "accelerator":
            if runtime is None:
                from daemon.workers.device import make_runtime

                runtime = make_runtime("cpu")
            analyzer = factory(validated, runtime)
        else:
            analyzer = factory(validated)
        if isinstance(validated, GateOptions):  # it declares the motion gate's options
            from daemon.workers.analyzers.gated import gated

            analyzer = gated(analyzer, validated)
        out.append(analyzer)
    return out
