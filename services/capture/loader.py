"""Reading a strategies file, with every mistake reported as `file:line: where: what`.

pydantic reports where a value is wrong as a path of keys (`strategies, 2, uncertain, band`);
the YAML node tree composed from the same text maps that path back to its line.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from services.capture.strategies import (
    NOT_YET,
    STRATEGY_TYPES,
    Defaults,
    Limits,
    StrategyFile,
    Window,
)

Problem = tuple[int, str]  # line, message
CAMERA_ID_RULE = "letters, digits and . _ : / - (starting with a letter or digit), at most 200"


class StrategyFileError(ValueError):
    """An unreadable or invalid strategies file; the message names file, line and reason."""


def load_strategies(path: Path) -> StrategyFile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StrategyFileError(f"{path}: cannot read: {exc}") from exc
    return parse_strategies(text, str(path))


def parse_strategies(text: str, name: str = "<strategies>") -> StrategyFile:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise StrategyFileError(f"{name}{line}: invalid YAML: {exc.problem or exc}") from exc
    except (yaml.YAMLError, RecursionError, ValueError) as exc:  # nesting, 5000-digit ints
        raise StrategyFileError(f"{name}: invalid YAML: {exc}") from exc
    if root is None or not isinstance(data, dict):
        raise StrategyFileError(f"{name}:1: expected a mapping with 'strategies'")
    problems = _duplicate_keys(root)
    parsed: StrategyFile | None = None
    try:
        parsed = StrategyFile.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # A list whose items failed is also "too short" to pydantic: the items say why.
        inner = {tuple(e["loc"][:i]) for e in errors for i in range(len(e["loc"]))}
        problems += [
            _describe(e, root, data)
            for e in errors
            if not (e["type"] == "too_short" and tuple(e["loc"]) in inner)
        ]
    if parsed is not None:
        problems += _file_rules(parsed, root)
    if problems:
        problems.sort(key=lambda p: p[0])
        raise StrategyFileError("\n".join(f"{name}:{line}: {text}" for line, text in problems))
    assert parsed is not None
    return parsed


def check_classes(strategies: StrategyFile, class_names: Collection[str]) -> None:
    """A class the model does not have can never match: a typo, or the wrong model."""
    problems = []
    for strategy in strategies.strategies:
        for wanted in getattr(strategy, "classes", None) or ():
            if wanted not in class_names:
                close = difflib.get_close_matches(wanted, list(class_names), n=1)
                hint = f"did you mean {close[0]!r}?" if close else "see the model's class names"
                problems.append(
                    f"strategy {strategy.name!r}: the model has no class {wanted!r} ({hint})"
                )
    if problems:
        raise StrategyFileError("\n".join(problems))


def _file_rules(parsed: StrategyFile, root: Node) -> list[Problem]:
    """Rules across strategies: names are unique, and every strategy is bounded."""
    found: list[Problem] = []
    first: dict[str, int] = {}
    for i, strategy in enumerate(parsed.strategies):
        if strategy.name in first:
            line, path = _locate(root, ("strategies", i, "name"))
            found.append((line, f"{path}: duplicate name {strategy.name!r} "
                                f"(also strategies[{first[strategy.name]}])"))  # fmt: skip
        first.setdefault(strategy.name, i)
        if not parsed.limits_of(strategy).bounded:
            line, path = _locate(root, ("strategies", i))
            found.append((line, f"{path}: no limits: set its limits or defaults.limits "
                                "(captures must be bounded)"))  # fmt: skip
    return found


def _duplicate_keys(node: Node, seen: set[int] | None = None) -> list[Problem]:
    # PyYAML keeps the last of two equal keys; in a config file that hides a mistake. Aliases
    # make the node graph a DAG (or a cycle): each node is visited once (alias bombs).
    seen = set() if seen is None else seen
    if id(node) in seen:
        return []
    seen.add(id(node))
    found: list[Problem] = []
    if isinstance(node, MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if isinstance(key, ScalarNode) and key.value in first:
                found.append(
                    (line, f"duplicate key {key.value!r} (first on line {first[key.value]})")
                )
            elif isinstance(key, ScalarNode):
                first[key.value] = line
            found += _duplicate_keys(value, seen)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            found += _duplicate_keys(item, seen)
    return found


def _file_loc(loc: tuple[Any, ...], data: dict[str, Any]) -> tuple[Any, ...]:
    """pydantic's path without the discriminator value it inserts after a strategy's index."""
    if len(loc) > 2 and loc[0] == "strategies" and isinstance(loc[1], int):
        strategies = data.get("strategies")
        item = strategies[loc[1]] if isinstance(strategies, list) else None
        if isinstance(item, dict) and loc[2] == item.get("type") and loc[2] in STRATEGY_TYPES:
            return loc[:2] + loc[3:]
    return loc


def _describe(error: Any, root: Node, data: dict[str, Any]) -> Problem:
    loc, kind, msg = _file_loc(tuple(error["loc"]), data), error["type"], error["msg"]
    if kind == "union_tag_invalid":
        loc += ("type",)
        tag = error["input"].get("type")
        if tag in NOT_YET:
            msg = f"type {tag!r} is not available: it {NOT_YET[tag]}; remove this strategy"
        else:
            msg = f"unknown strategy type {tag!r}; expected one of {_types()}"
    elif kind == "union_tag_not_found":
        msg = f"a strategy needs a type, one of {_types()}"
    elif kind == "extra_forbidden":
        fields = list(_model_at(loc, data).model_fields)
        close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(fields)}"
        msg = f"unknown key {loc[-1]!r} ({hint})"
    elif kind == "missing":
        msg, loc = f"missing required key {loc[-1]!r}", loc[:-1]
    elif kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif loc[-1:] == ("[key]",) and kind == "string_pattern_mismatch":
        msg, loc = f"{error['input']!r} is not a camera id: {CAMERA_ID_RULE}", loc[:-1]
    elif loc[-1:] == ("[key]",):
        msg, loc = f"{msg}: quote the key", loc[:-1]  # `12:` is an int to YAML
    if isinstance(error.get("input"), bool) and kind != "bool_type":
        msg += " (YAML reads unquoted yes/no/on/off as true/false: quote it)"
    line, path = _locate(root, loc)
    return line, f"{path}: {msg}" if path else msg


def _types() -> str:
    return ", ".join(STRATEGY_TYPES)


def _model_at(loc: tuple[Any, ...], data: dict[str, Any]) -> type[BaseModel]:
    """The model that validates the mapping holding loc's last key."""
    parent = loc[:-1]
    if parent == ("defaults",):
        return Defaults
    if parent[-1:] == ("limits",):
        return Limits
    if parent[-2:-1] == ("limits",):
        return Window
    if len(parent) == 2 and parent[0] == "strategies":
        item = data["strategies"][parent[1]]
        return STRATEGY_TYPES[item["type"]]
    return StrategyFile


def _locate(root: Node, loc: tuple[Any, ...]) -> tuple[int, str]:
    """The line of the deepest node the path reaches, and the path as `a.b[1].c`."""
    node: Node | None = root
    mark = root
    path = ""
    for item in loc:
        indexed = isinstance(node, SequenceNode) and isinstance(item, int)
        if isinstance(node, MappingNode):
            entry = next(((k, v) for k, v in node.value if k.value == str(item)), None)
            mark, node = entry if entry is not None else (mark, None)
        elif isinstance(node, SequenceNode) and isinstance(item, int) and item < len(node.value):
            node = mark = node.value[item]
        else:
            node = None
        path += f"[{item}]" if indexed else f"{'.' if path else ''}{item}"
    return mark.start_mark.line + 1, path
