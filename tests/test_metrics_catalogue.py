"""docs/metrics.md lists every metric of tandemd and the workers, with its type and
labels as defined in code, and nothing that is not defined."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

from daemon.metrics import Metrics
from daemon.workers.metrics import WorkerMetrics
from tests.conftest import ROOT

TYPES = {"counter", "gauge", "histogram"}


def _defined() -> dict[str, tuple[str, set[str]]]:
    out = {}
    for build in (Metrics, WorkerMetrics):
        registry = CollectorRegistry()
        build(registry)
        for collector in list(registry._collector_to_names):  # no public list
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
    assert set(defined) - set(documented) == set(), "metrics missing from docs/metrics.md"
    assert set(documented) - set(defined) == set(), "docs/metrics.md lists unknown metrics"
    for name, (kind, labels) in defined.items():
        assert documented[name] == (kind, labels), name
