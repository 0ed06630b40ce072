"""docs/metrics.md lists every metric of tandemd and the workers, with its type and
labels as defined in code, and nothing that is not defined."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

from daemon.core.metrics import Metrics
from daemon.dispatch.figures import WorkerFigures
from daemon.workers.metrics import WorkerMetrics
from tests.conftest import ROOT

TYPES = {"counter", "gauge", "histogram"}


def _defined() -> dict[str, tuple[str, set[str]]]:
    out = {}
    for build in (Metrics, WorkerMetrics):
        registry = CollectorRegistry()
        build(registry)
        for collector in list(registry._collector_to_names):  # no public list
            if isinstance(collector, WorkerFigures):
                continue  # the workers' own metrics, re-exported (below)
            for family in collector.describe():
                name = family.name + ("_total" if family.type == "counter" else "")
                labels = set(getattr(collector, "_labelnames", ()))
                out[name] = (family.type, labels)
    return out


def _documented() -> dict[str, tuple[str, set[str]]]:
    out = {}
    text = (ROOT / "docs" / "metrics.md").read_text()
    for match in re.finditer(r"^\| `(tandem_\w+)` \| (\w+) \| ?([\w, ]*?) ?\|", text, re.M):
        labels = {part.strip() for part in match[3].split(",") if part.strip()}
        out[match[1]] = (match[2], labels)
    return out


def test_catalogue_matches_code() -> None:
    defined, documented = _defined(), _documented()
    defined["tandem_worker_up"] = _reexported()["tandem_worker_up"]  # tandemd's alone
    assert set(defined) - set(documented) == set(), "metrics missing from docs/metrics.md"
    assert set(documented) - set(defined) == set(), "docs/metrics.md lists unknown metrics"
    for name, (kind, labels) in defined.items():
        assert documented[name] == (kind, labels), name


def _reexported() -> dict[str, tuple[str, set[str]]]:
    """tandemd's copies of the workers' figures, with a worker registered and reported."""
    worker = WorkerMetrics(CollectorRegistry())
    worker.seed(["motion"])
    figures = WorkerFigures(CollectorRegistry())
    figures.registered("h:1:vision", "vision")
    figures.update("h:1:vision", worker.stats())
    out = {}
    for family in figures.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = {k for s in family.samples for k in s.labels if k != "le"}
        out[name] = (family.type, labels)
    return out


def test_tandemd_exports_each_worker_metric_with_kind_and_worker() -> None:
    defined, documented, reexported = _defined(), _documented(), _reexported()
    own = WorkerMetrics(CollectorRegistry()).registry._collector_to_names.values()
    assert set(reexported) - {"tandem_worker_up"} == {
        name for names in own for name in names if name in defined
    }
    for name, (kind, labels) in reexported.items():
        if name == "tandem_worker_up":
            assert documented[name] == (kind, labels) == ("gauge", {"kind", "worker"})
        else:
            assert (kind, labels) == (defined[name][0], defined[name][1] | {"kind", "worker"})
