"""`${NAME}` in config strings: secrets stay out of config.toml.

A stream URL's password, a CURVE key's path under systemd's $CREDENTIALS_DIRECTORY: the
config names an environment variable and tandemd reads it at load (and again at each
reload). `$${` stands for a literal `${`. An unset variable is an error naming the key,
never an empty string silently spliced into a URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class UnsetVariableError(Exception):
    """A `${NAME}` whose variable is not set (or not a valid name); `key` says where."""

    def __init__(self, key: str, name: str, problem: str = "is not set") -> None:
        super().__init__(f"{key}: environment variable {name!r} {problem}")
        self.key, self.name = key, name


def expand(text: str, environ: Mapping[str, str], key: str = "value") -> str:
    """`text` with each `${NAME}` replaced by its value in `environ`."""

    def value(match: re.Match[str]) -> str:
        if match[0] == "$${":
            return "${"
        name = match[1]
        if not _NAME.match(name):
            raise UnsetVariableError(key, name, "is not a valid variable name")
        if name not in environ:
            raise UnsetVariableError(key, name)
        return environ[name]

    return _REFERENCE.sub(value, text) if "${" in text else text


def expand_tree(node: Any, environ: Mapping[str, str], key: str = "") -> Any:
    """A parsed TOML document with every string value expanded (keys are left alone)."""
    if isinstance(node, str):
        return expand(node, environ, key or "value")
    if isinstance(node, dict):
        return {k: expand_tree(v, environ, f"{key}.{k}" if key else k) for k, v in node.items()}
    if isinstance(node, list):
        return [expand_tree(v, environ, _item_key(key, i, v)) for i, v in enumerate(node)]
    return node


def _item_key(key: str, index: int, item: Any) -> str:
    """streams[1](id='cam'), as the config's other errors name a stream."""
    named = isinstance(item, dict) and isinstance(item.get("id"), str)
    return f"{key}[{index}](id={item['id']!r})" if named else f"{key}[{index}]"
