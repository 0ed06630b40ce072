"""Config validation errors as an operator reads them: one line per key at fault,
`file: key: message` (or `file: key = value: message`), every error at once, with the
nearest known key for an unknown one."""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from streams import redact

_Loc = list[int | str]


def describe(exc: ValidationError, raw: dict[str, Any], source: str, root: type[BaseModel]) -> str:
    """Every error of `exc`, one line each; a union's alternatives give one line."""
    lines: list[str] = []
    for err in exc.errors():
        loc, parent, tagged = _walk(list(err["loc"]), root)
        line = _line(err, loc, parent, raw, source)
        if not (tagged and any(_same_key(line, seen) for seen in lines)):
            lines.append(line)
    return "\n".join(lines)


def _same_key(line: str, other: str) -> bool:
    return line.split(" = ", 1)[0] == other.split(" = ", 1)[0]


def _line(err: Any, loc: _Loc, parent: Any, raw: dict[str, Any], source: str) -> str:
    key = _key_path(loc, raw)
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        return f"{source}: {key}: required key is missing"
    if err["type"] == "extra_forbidden":
        return f"{source}: {key}: unknown key{_did_you_mean(loc, parent)}"
    if key and err["type"] not in ("value_error",):
        return f"{source}: {key} = {redact(repr(err['input']))}: {message}"
    # A validator naming a sub-key (an event rule's condition tree names even one level).
    sub_key = (
        r"^[a-z_]+[a-z_\[\]\d.]*:"
        if key.endswith(("when", "until"))
        else r"^[a-z_]+(\[\d+\]|\.)[a-z_\[\]\d.]*:"
    )
    if key and re.match(sub_key, message):
        return f"{source}: {key}.{message}"
    where = f"{key}: " if key else ""
    return f"{source}: {where}{message}"


def _did_you_mean(loc: _Loc, parent: Any) -> str:
    model = _model(parent)
    if model is None or not loc or not isinstance(loc[-1], str):
        return ""
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _walk(loc: _Loc, root: type[BaseModel]) -> tuple[_Loc, Any, bool]:
    """The key path of `loc` without pydantic's union tags ("constrained-int",
    "literal['auto']"), the type holding its last key, and whether a tag was dropped."""
    out: _Loc = []
    node: Any = root
    parent: Any = None
    tagged = False
    for part in loc:
        if part == "function-after":
            continue
        if isinstance(part, int):
            out.append(part)
            parent, node = node, _item(node)
            continue
        model = _model(node)
        if model is not None:
            field = model.model_fields.get(part)
            out.append(part)
            parent, node = node, field.annotation if field else None
        elif _is_union(node):
            tagged = True  # a union member's tag, not a key
            node = None
        else:
            out.append(part)
            parent, node = node, _item(node)
    return out, parent, tagged


def _model(node: Any) -> type[BaseModel] | None:
    if isinstance(node, type) and issubclass(node, BaseModel):
        return node
    if _is_union(node):  # `Model | None`: the one model in it
        models = [m for m in (_model(a) for a in typing.get_args(node)) if m is not None]
        return models[0] if len(models) == 1 else None
    return None


def _is_union(node: Any) -> bool:
    return typing.get_origin(node) in (typing.Union, types.UnionType)


def _item(node: Any) -> Any:
    """The element type of list[X] or the value type of dict[K, X]; None otherwise."""
    if typing.get_origin(node) is typing.Annotated:
        node = typing.get_args(node)[0]
    args = typing.get_args(node)
    if typing.get_origin(node) in (list, tuple, set) and args:
        return args[0]
    if typing.get_origin(node) is dict and len(args) == 2:
        return args[1]
    return None


def _key_path(loc: _Loc, raw: Any) -> str:
    """streams[1].fps, with a stream's id when it has one: streams[1](id='cam').fps."""
    out = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                out += f"(id={node['id']!r})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out
