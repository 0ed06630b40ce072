"""dashboards/: the alert rules pass `promtool check rules` and their unit tests
(`promtool test rules`); every query of the Grafana dashboard is valid PromQL (checked
by promtool as a recording rule) over metrics that tandemd or its workers define."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from daemon.core.metrics import Metrics
from daemon.workers.metrics import WorkerMetrics
from tests.conftest import ROOT

PROMTOOL = shutil.which("promtool")
DASHBOARDS = ROOT / "dashboards"
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")


def promtool(*args: str, cwd: Path = DASHBOARDS) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@needs_promtool
def test_alert_rules_check() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 12 rules found" in result.stdout


@needs_promtool
def test_alert_rules_unit_tests() -> None:
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_seen_firing_in_the_rule_tests() -> None:
    """Each alert of alerts.yml has a rule test case where it fires (not only `[]`)."""
    rules = (DASHBOARDS / "alerts.yml").read_text()
    alerts = set(re.findall(r"^ *- alert: (\w+)$", rules, re.M))
    tests = (DASHBOARDS / "alerts_test.yml").read_text()
    firing = set(re.findall(r"alertname: (\w+)\n *exp_alerts:\n *- exp_labels", tests))
    assert len(alerts) == 12 and alerts <= firing, alerts - firing


def _queries() -> list[str]:
    dashboard = json.loads((DASHBOARDS / "tandem.json").read_text())
    out = []
    for panel in dashboard["panels"]:
        out += [t["expr"] for t in panel.get("targets", [])]
    return out


def _metric_names() -> set[str]:
    names = {"up"}
    for build in (Metrics, WorkerMetrics):
        registry = CollectorRegistry()
        build(registry)
        for collector in list(registry._collector_to_names):  # no public list
            for family in collector.describe():
                suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
                names |= {family.name + x for x in suffixes.get(family.type, [""])}
    return names


def test_dashboard_queries_use_defined_metrics() -> None:
    names = _metric_names()
    for expr in _queries():
        used = set(re.findall(r"\btandem_\w+", expr)) | set(re.findall(r"\bup(?=\{)", expr))
        assert used and used <= names, (expr, used - names)
    sections = {p["title"] for p in json.loads((DASHBOARDS / "tandem.json").read_text())["panels"]}
    assert {"Stream health", "Latency", "Throughput", "Workers", "GPU"} <= sections


def test_every_query_selects_the_instance_variable() -> None:
    """Each metric a panel reads is narrowed to the dashboard's `instance` selection,
    and worker figures to tandemd's copies (a worker scraped too is not counted twice)."""
    dashboard = json.loads((DASHBOARDS / "tandem.json").read_text())
    (variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == "instance"]
    assert variable["query"] == "label_values(tandem_build_info, instance)"
    own = {n for n in _worker_own_names() if n != "tandem_worker_up"}
    for expr in _queries():
        selectors = re.findall(r"\b(tandem_\w+|up)(\{[^}]*\})?", expr)
        assert selectors, expr
        for name, braces in selectors:
            assert 'instance=~"$instance"' in braces, (name, expr)
            if any(name.startswith(n) for n in own):
                assert 'worker!=""' in braces, (name, expr)


def _worker_own_names() -> set[str]:
    registry = CollectorRegistry()
    WorkerMetrics(registry)
    return {n for names in registry._collector_to_names.values() for n in names}


@needs_promtool
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    rules: dict[str, Any] = {"groups": [{"name": "dashboard", "rules": []}]}
    for n, expr in enumerate(_queries()):
        concrete = expr.replace("$__rate_interval", "1m").replace("$stream", ".*")
        concrete = concrete.replace("$instance", ".*")
        rules["groups"][0]["rules"].append({"record": f"dashboard:query_{n}", "expr": concrete})
    (tmp_path / "queries.yml").write_text(json.dumps(rules))  # JSON is YAML
    result = promtool("check", "rules", "queries.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
