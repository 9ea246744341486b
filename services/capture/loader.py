"""Reading a strategies file, with every mistake reported as `file:line: where: what`.

The parsing, locating and generic messages are services.core.yaml_file's; what is a
strategies file's own is here: which model holds a key, types not available yet, camera ids,
unique names and bounded strategies.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails
from yaml.nodes import Node

from services.capture.strategies import (
    NOT_YET,
    STRATEGY_TYPES,
    Defaults,
    Limits,
    StrategyFile,
    Window,
)
from services.core import yaml_file
from services.core.yaml_file import Loc, Problem

CAMERA_ID_RULE = "letters, digits and . _ : / - (starting with a letter or digit), at most 200"
STRATEGIES = yaml_file.Union("strategy", STRATEGY_TYPES)


class StrategyFileError(ValueError):
    """An unreadable or invalid strategies file; the message names file, line and reason."""


def load_strategies(path: Path) -> StrategyFile:
    path = Path(path)
    return parse_strategies(yaml_file.read_text(path, StrategyFileError), str(path))


def parse_strategies(text: str, name: str = "<strategies>") -> StrategyFile:
    expected = "expected a mapping with 'strategies'"
    root, data = yaml_file.parse(text, name, StrategyFileError, expected)
    problems = yaml_file.duplicate_keys(root)
    parsed, errors = yaml_file.validate(StrategyFile, data)
    # A list whose items failed is also "too short" to pydantic: the items say why.
    inner = {tuple(e["loc"][:i]) for e in errors for i in range(len(e["loc"]))}
    problems += [
        yaml_file.describe(e, root, data, STRATEGIES, _model_at, _special, untag=True)
        for e in errors
        if not (e["type"] == "too_short" and tuple(e["loc"]) in inner)
    ]
    if parsed is not None:
        problems += _file_rules(parsed, root)
    yaml_file.raise_problems(problems, name, StrategyFileError)
    assert parsed is not None
    return parsed


def check_classes(strategies: StrategyFile, class_names: Collection[str]) -> None:
    """A class the model does not have can never match: a typo, or the wrong model."""
    problems = []
    for strategy in strategies.strategies:
        for wanted in getattr(strategy, "classes", None) or ():
            if wanted not in class_names:
                close = yaml_file.closest(wanted, class_names)
                hint = f"did you mean {close!r}?" if close else "see the model's class names"
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
            line, path = yaml_file.locate(root, ("strategies", i, "name"))
            found.append((line, f"{path}: duplicate name {strategy.name!r} "
                                f"(also strategies[{first[strategy.name]}])"))  # fmt: skip
        first.setdefault(strategy.name, i)
        if not parsed.limits_of(strategy).bounded:
            line, path = yaml_file.locate(root, ("strategies", i))
            found.append((line, f"{path}: no limits: set its limits or defaults.limits "
                                "(captures must be bounded)"))  # fmt: skip
    return found


def _special(error: ErrorDetails, loc: Loc) -> tuple[Loc, str] | None:
    tag = error["input"].get("type") if error["type"] == "union_tag_invalid" else None
    if tag in NOT_YET:
        return (*loc, "type"), (
            f"type {tag!r} is not available: it {NOT_YET[tag]}; remove this strategy"
        )
    if loc[-1:] == ("[key]",) and error["type"] == "string_pattern_mismatch":
        return loc[:-1], f"{error['input']!r} is not a camera id: {CAMERA_ID_RULE}"
    return None


def _model_at(loc: Loc, data: dict[str, Any]) -> type[BaseModel]:
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
