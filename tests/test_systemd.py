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
