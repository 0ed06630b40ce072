"""The version a command reports with --version: the installed distribution's."""

from __future__ import annotations

import importlib.metadata
import platform


def tandem_version() -> str:
    try:
        return importlib.metadata.version("tandem")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown (not installed)"


def version_text(prog: str) -> str:
    return f"{prog} {tandem_version()} (Python {platform.python_version()})"
