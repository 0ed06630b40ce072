"""Every panel of dashboards/tandem.json has data with the shipped config.toml: Debian's
prometheus scrapes a live tandemd running it (only its runtime dir and ports changed;
the workers have no metrics port) and answers every panel's expression with at least
one finite value, through its HTTP API on loopback."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, free_port, wait_until
from tests.test_health import get

PROMETHEUS = shutil.which("prometheus")
BUDGET_S = 85.0  # start-up, scrapes and every query, all together
RATE_INTERVAL = "10s"  # Grafana's $__rate_interval at a 1 s scrape interval is 4 s or more


def shipped_config(tmp: Path, publish: int, metrics: int) -> str:
    text = (ROOT / "config.toml").read_text()
    for old, new in (
        ('runtime_dir = ""', f'runtime_dir = "{tmp / "run"}"'),
        ('endpoint = "tcp://127.0.0.1:7701"', f'endpoint = "tcp://127.0.0.1:{publish}"'),
        ("port = 9310 ", f"port = {metrics} "),
        ("digest_s = 5.0", "digest_s = 0"),
    ):
        assert text.count(old) == 1, old  # the shipped config changed: change this too
        text = text.replace(old, new)
    return text


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, expression) of every target, with the variables at "All"."""
    dashboard = json.loads((ROOT / "dashboards" / "tandem.json").read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", RATE_INTERVAL)
            expr = expr.replace("$instance", ".*").replace("$stream", ".*")
            out.append((panel["title"], expr))
    return out


def has_data(web: int, expr: str) -> bool:
    url = f"http://127.0.0.1:{web}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        body = json.loads(urllib.request.urlopen(url, timeout=5).read())
    except (urllib.error.URLError, ConnectionError):
        return False
    assert body["status"] == "success", body
    return any(math.isfinite(float(r["value"][1])) for r in body["data"]["result"])


@pytest.mark.slow
@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (scripts/system-deps)")
@pytest.mark.timeout(120)
def test_every_panel_has_data_with_the_shipped_config(tmp_path: Path, tandemd: Any) -> None:
    started = time.monotonic()
    port, web = free_port(), free_port()
    daemon = tandemd(shipped_config(tmp_path, free_port(), port))
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n"
        f"  - job_name: tandemd\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    )
    assert PROMETHEUS is not None
    with (tmp_path / "prometheus.log").open("wb") as log:
        server = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{web}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_until(lambda: get(port, "/readyz")[0] == 200, 60), daemon.log()
        missing = panel_queries()
        while missing and time.monotonic() - started < BUDGET_S:
            missing = [(title, expr) for title, expr in missing if not has_data(web, expr)]
            time.sleep(1.0)
        assert not missing, (missing, daemon.log()[-3000:])
        assert daemon.stop() == 0
    finally:
        server.terminate()
        server.wait(10)
