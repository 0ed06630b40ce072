"""Event rules: declarative conditions on analyzer outputs, combined with all/any/not.

A rule is data from config.toml, validated at load; nothing in it is ever evaluated as
code. A condition compares one analyzer output with a value (`gt`, `ge`, `lt`, `le`,
`eq`, `ne`) or tests it (`is_true`, `is_false`), optionally only once it has held for
`for_s` seconds of media time. Combinators nest: `{all = [...]}`, `{any = [...]}`,
`{not = {...}}`. An event starts when `when` has held for `min_duration_s` (its start is
the media time `when` became true) and ends when `when` has been false (or `until` true)
for `clear_after_s` (its end is the media time that began).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.fusion.actions import Action, EnableAnalyzer

Op = Literal["gt", "ge", "lt", "le", "eq", "ne", "is_true", "is_false"]
UNARY_OPS = ("is_true", "is_false")
COMBINATORS = ("all", "any", "not")
MAX_DEPTH = 8


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    analyzer: str = Field(min_length=1)
    output: str = Field(min_length=1)
    op: Op
    value: float | bool | str | None = None
    for_s: float = Field(0.0, ge=0, le=3600)  # true only once it has held this long

    @model_validator(mode="after")
    def _value_fits_op(self) -> Self:
        if self.op in UNARY_OPS and self.value is not None:
            raise ValueError(f"value: {self.op} takes no value")
        if self.op not in UNARY_OPS and self.value is None:
            raise ValueError(f"value: {self.op} needs a value")
        if self.op in ("gt", "ge", "lt", "le") and not _is_number(self.value):
            raise ValueError(f"value: {self.op} needs a number, not {self.value!r}")
        return self


class AllOf(_Strict):
    all: list[Node] = Field(min_length=1)


class AnyOf(_Strict):
    any: list[Node] = Field(min_length=1)


class NotOf(_Strict):
    not_: Node = Field(alias="not")


Node = Condition | AllOf | AnyOf | NotOf


def parse_node(raw: Any, path: str = "", depth: int = 0) -> Node:
    """A condition tree from its TOML form; ValueError names the sub-key at fault."""
    if depth > MAX_DEPTH:
        raise ValueError(_at(path, f"nested deeper than {MAX_DEPTH} levels"))
    if isinstance(raw, BaseModel):
        return raw  # type: ignore[return-value]
    if not isinstance(raw, dict):
        raise ValueError(_at(path, "expected a table (a condition, or all/any/not)"))
    combinators = [k for k in raw if k in COMBINATORS]
    if not combinators:
        unknown = sorted(set(raw) - set(Condition.model_fields))
        if unknown and "analyzer" not in raw:
            raise ValueError(
                f"{_join(path, unknown[0])}: unknown combinator (all, any, not) or condition key"
            )
        return _condition(raw, path)
    if len(raw) != 1:
        raise ValueError(_at(path, f"{combinators[0]} must be the only key of its table"))
    key, inner = combinators[0], raw[combinators[0]]
    if key == "not":
        return NotOf.model_validate({"not": parse_node(inner, _join(path, "not"), depth + 1)})
    if not isinstance(inner, list) or not inner:
        raise ValueError(f"{_join(path, key)}: expected a non-empty list of conditions")
    nodes = [parse_node(x, f"{_join(path, key)}[{i}]", depth + 1) for i, x in enumerate(inner)]
    return AllOf(all=nodes) if key == "all" else AnyOf(any=nodes)


def _condition(raw: dict[str, Any], path: str) -> Condition:
    from pydantic import ValidationError

    try:
        return Condition.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] == "missing":
            message = "required key is missing"
        if not field and ":" in message:  # a model validator naming its field
            field, message = message.split(":", 1)
        return _raise(f"{_join(path, field)}: {message.strip()}")


def _raise(message: str) -> Condition:
    raise ValueError(message)


class EventRule(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    when: Node
    until: Node | None = None  # ends the event when true; default: when `when` is false
    min_duration_s: float = Field(0.0, ge=0, le=3600)
    clear_after_s: float = Field(0.0, ge=0, le=3600)
    description: str = ""
    actions: list[Action] = Field(default_factory=list, max_length=8)  # cascades (actions.py)

    @field_validator("when", "until", mode="before")
    @classmethod
    def _tree(cls, raw: Any) -> Any:
        return None if raw is None else parse_node(raw)


def leaves(node: Node, path: str = "when") -> Iterator[tuple[str, Condition]]:
    """Every condition of a tree with its key path (`when.all[1]`)."""
    if isinstance(node, Condition):
        yield path, node
    elif isinstance(node, AllOf):
        for i, child in enumerate(node.all):
            yield from leaves(child, f"{path}.all[{i}]")
    elif isinstance(node, AnyOf):
        for i, child in enumerate(node.any):
            yield from leaves(child, f"{path}.any[{i}]")
    else:
        yield from leaves(node.not_, f"{path}.not")


def check_rules(
    rules: list[EventRule], analyzers: dict[str, dict[str, str]], on_demand: set[str]
) -> None:
    """Every condition names a configured analyzer and, where its outputs are declared, one
    of them; every enable_analyzer action one that is on demand. `analyzers`: name ->
    declared outputs (empty when undeclared)."""
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in seen:
            raise ValueError(f"events[{i}].name: duplicate event name {rule.name!r}")
        seen.add(rule.name)
        for j, action in enumerate(rule.actions):
            if isinstance(action, EnableAnalyzer) and action.analyzer not in analyzers:
                raise ValueError(
                    f"events[{i}].actions[{j}].analyzer: {action.analyzer!r} is not in "
                    "workers.vision.analyzers or workers.audio.analyzers"
                )
            if isinstance(action, EnableAnalyzer) and action.analyzer not in on_demand:
                raise ValueError(
                    f"events[{i}].actions[{j}].analyzer: {action.analyzer!r} runs on every "
                    "item already; list it in its pool's on_demand (workers.vision.on_demand "
                    "or workers.audio.on_demand) to have it run only when enabled"
                )
        trees = [("when", rule.when)] + ([("until", rule.until)] if rule.until else [])
        for root, tree in trees:
            for path, cond in leaves(tree, root):
                where = f"events[{i}].{path}"
                if cond.analyzer not in analyzers:
                    raise ValueError(
                        f"{where}.analyzer: {cond.analyzer!r} is not in workers.vision.analyzers "
                        "or workers.audio.analyzers"
                    )
                declared = analyzers[cond.analyzer]
                if declared and not _declares(declared, cond.output):
                    raise ValueError(
                        f"{where}.output: {cond.analyzer} has no output {cond.output!r}; "
                        f"it has {', '.join(sorted(declared))}"
                    )


def _declares(declared: dict[str, str], output: str) -> bool:
    return output in declared or any(
        k.endswith("*") and output.startswith(k[:-1]) for k in declared
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _at(path: str, message: str) -> str:
    return f"{path}: {message}" if path else message


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()
