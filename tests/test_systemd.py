"""The systemd units: `systemd-analyze verify` passes and `systemd-analyze security`
scores each below 5.0 (the OK band). The units name /opt/tandem as the install prefix;
the test points that at a prefix whose .venv/bin holds this venv's real entry points."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

UNITS = {
    "tandemd.service": "tandemd.service",
    "tandem-vision@.service": "tandem-vision@gpu0.service",
    "tandem-audio@.service": "tandem-audio@1.service",
}
ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """The units with /opt/tandem pointing at a prefix holding the real entry points."""
    prefix = tmp_path / "opt-tandem"
    (prefix / ".venv" / "bin").mkdir(parents=True)
    for script in ("tandemd", "tandem"):
        real = Path(sys.executable).parent / script
        assert real.exists(), f"{real}: install the project (pip install -e .)"
        (prefix / ".venv" / "bin" / script).symlink_to(real)
    units = tmp_path / "units"
    units.mkdir()
    for name in UNITS:
        text = (ROOT / "systemd" / name).read_text().replace("/opt/tandem", str(prefix))
        (units / name).write_text(text)
    return units


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", UNITS)
def test_unit_verifies(installed: Path, name: str) -> None:
    result = _analyze("verify", str(installed / UNITS[name]))
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@pytest.mark.parametrize("name", UNITS)
def test_unit_security_ok_band(installed: Path, name: str) -> None:
    result = _analyze("security", "--offline=yes", "--threshold=50", str(installed / name))
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", result.stdout)
    assert match is not None, result.stdout
    assert float(match[1]) < 5.0 and match[2] == "OK", match[0]


def test_tandemd_unit_is_notify_with_watchdog_and_bounded_restarts() -> None:
    text = (ROOT / "systemd" / "tandemd.service").read_text()
    for line in (
        "Type=notify",
        "NotifyAccess=main",
        "Restart=on-failure",
        "StartLimitBurst=5",
        "RuntimeDirectory=tandem",
        "PrivateDevices=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ):
        assert line in text.splitlines(), line
    assert re.search(r"^WatchdogSec=\d+$", text, re.M)


def test_only_the_vision_unit_reaches_gpus() -> None:
    for name in UNITS:
        text = (ROOT / "systemd" / name).read_text()
        assert ("DeviceAllow=char-nvidia-frontend rw" in text) == (name.startswith("tandem-vision"))
        assert "StartLimitBurst=5" in text and "DynamicUser=yes" in text


def _systemd_version() -> int:
    out = _analyze("--version").stdout
    match = re.match(r"systemd (\d+)", out)
    assert match is not None, out
    return int(match[1])


def test_reload_type_fits_the_installed_systemd(installed: Path) -> None:
    """tandemd speaks the notify-reload protocol (RELOADING=1, MONOTONIC_USEC, READY=1:
    tests/test_notify.py). Type=notify-reload came with systemd 253: the shipped unit is
    Type=notify with ExecReload, which any systemd takes; on 253 and later a drop-in
    switches it (docs/operations.md), and there the switched unit verifies clean."""
    text = (installed / "tandemd.service").read_text()
    assert "Type=notify" in text.splitlines()
    switched = installed / "tandemd-reload.service"
    switched.write_text(
        text.replace("Type=notify\n", "Type=notify-reload\n").replace(
            "ExecReload=/bin/kill -HUP $MAINPID\n", ""
        )
    )
    result = _analyze("verify", str(switched))
    clean = result.returncode == 0 and not result.stderr.strip()
    assert clean == (_systemd_version() >= 253), result.stderr


@pytest.mark.parametrize("name", UNITS)
def test_units_bound_memory_and_tasks(name: str) -> None:
    text = (ROOT / "systemd" / name).read_text()
    memory = re.search(r"^MemoryMax=(\d+)G$", text, re.M)
    tasks = re.search(r"^TasksMax=(\d+)$", text, re.M)
    assert memory and tasks, name
    # The shipped config measured 1.3 GiB and 47 tasks (the unit's comment): room above it.
    assert 2 <= int(memory[1]) <= 16 and 128 <= int(tasks[1]) <= 4096
