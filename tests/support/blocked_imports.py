"""Run Python code in a fresh interpreter where some top-level packages cannot be
imported: proves a module's import path does not pull them in."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def runs_without(packages: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    """`code` run with `packages` made unimportable; it should print "ok" last."""
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {packages!r}:\n"
        "            raise ImportError(f'blocked: {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    return subprocess.run(
        [sys.executable, "-c", blocker + code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
