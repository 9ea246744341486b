"""Reading a rule file, with every mistake reported as `file:line: where: what`.

The parsing, locating and generic messages are services.core.yaml_file's; what is a rule
file's own is here: which model holds a key, the rule id message, unique ids per camera.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails
from yaml.nodes import Node

from services.core import yaml_file
from services.core.yaml_file import Loc, Problem

from .models import RULE_TYPES, CameraRules, Defaults, RuleSet

RULES = yaml_file.Union("rule", RULE_TYPES)


class RuleFileError(ValueError):
    """An unreadable or invalid rule file; the message names file, line and reason."""


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rule file; raise RuleFileError listing every problem found."""
    path = Path(path)
    return parse_rules(yaml_file.read_text(path, RuleFileError), str(path))


def parse_rules(text: str, name: str = "<rules>") -> RuleSet:
    """load_rules for text already in hand; `name` prefixes the messages."""
    expected = "expected a mapping with 'cameras' (and 'defaults')"
    root, data = yaml_file.parse(text, name, RuleFileError, expected, context=True)
    problems = yaml_file.duplicate_keys(root)
    ruleset, errors = yaml_file.validate(RuleSet, data)
    # "unknown key 'polgon' (did you mean 'polygon'?)" already says 'polygon' is missing.
    misspelled = {
        (tuple(e["loc"][:-1]), _suggest(str(e["loc"][-1]), tuple(e["loc"]), data))
        for e in errors
        if e["type"] == "extra_forbidden"
    }
    problems += [
        yaml_file.describe(e, root, data, RULES, _model_at, _special)
        for e in errors
        if not (e["type"] == "missing" and (tuple(e["loc"][:-1]), e["loc"][-1]) in misspelled)
    ]
    if ruleset is not None:
        problems += _duplicate_rule_ids(ruleset, root)
    yaml_file.raise_problems(problems, name, RuleFileError)
    assert ruleset is not None
    return ruleset


def _duplicate_rule_ids(ruleset: RuleSet, root: Node) -> list[Problem]:
    found = []
    for cam, camera in ruleset.cameras.items():
        first: dict[str, int] = {}
        for i, rule in enumerate(camera.rules):
            loc = ("cameras", cam, "rules", i, "id")
            if rule.id in first:
                line, path = yaml_file.locate(root, loc)
                also = f"also rules[{first[rule.id]}]"
                found.append((line, f"{path}: duplicate rule id {rule.id!r} ({also})"))
            else:
                first[rule.id] = i
    return found


def _special(error: ErrorDetails, loc: Loc) -> tuple[Loc, str] | None:
    if error["type"] == "string_pattern_mismatch" and loc[-1:] == ("id",):
        return loc, "a rule id is letters, digits and _ . : - (starting with a letter or digit)"
    return None


def _suggest(key: str, loc: Loc, data: dict[str, Any]) -> str | None:
    """The key the enclosing model accepts that is closest to a misspelled one."""
    return yaml_file.closest(key, _model_at(loc, data).model_fields)


def _model_at(loc: Loc, data: dict[str, Any]) -> type[BaseModel]:
    """The model that validates the mapping holding loc's last key."""
    parent: Any = data
    for item in loc[:-1]:
        in_dict = isinstance(parent, dict) and item in parent
        in_list = isinstance(parent, list) and isinstance(item, int) and item < len(parent)
        if in_dict or in_list:  # else a discriminator tag: stay on the rule
            parent = parent[item]
    if (
        isinstance(parent, dict)
        and isinstance(parent.get("type"), str)
        and parent["type"] in RULE_TYPES
    ):
        return RULE_TYPES[parent["type"]]
    if loc[:1] == ("defaults",):
        return Defaults
    if loc[:1] == ("cameras",) and len(loc) == 3:
        return CameraRules
    return RuleSet
