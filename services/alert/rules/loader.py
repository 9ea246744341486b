"""Reading a rule file, with every mistake reported as `file:line: where: what`.

pydantic reports a location as a path of keys (`cameras, demo, rules, 1, polygon`); the YAML
node tree composed from the same text maps that path back to the line it came from.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .models import RULE_TYPES, CameraRules, Defaults, RuleSet


class RuleFileError(ValueError):
    """An unreadable or invalid rule file; the message names file, line and reason."""


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rule file; raise RuleFileError listing every problem found."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(f"{path}: cannot read: {exc}") from exc
    return parse_rules(text, str(path))


def parse_rules(text: str, name: str = "<rules>") -> RuleSet:
    """load_rules for text already in hand; `name` prefixes the messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        why = exc.problem or str(exc)
        if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
            # Where the unclosed bracket or block began is often where the typo is.
            why += f" ({exc.context} on line {exc.context_mark.line + 1})"
        raise RuleFileError(f"{name}{line}: invalid YAML: {why}") from exc
    except (yaml.YAMLError, RecursionError, ValueError) as exc:  # nesting, 5000-digit ints
        raise RuleFileError(f"{name}: invalid YAML: {exc}") from exc
    if root is None or not isinstance(data, dict):
        raise RuleFileError(f"{name}:1: expected a mapping with 'cameras' (and 'defaults')")
    problems = _duplicate_keys(root)
    ruleset: RuleSet | None = None
    try:
        ruleset = RuleSet.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # "unknown key 'polgon' (did you mean 'polygon'?)" already says 'polygon' is missing.
        misspelled = {
            (tuple(e["loc"][:-1]), _suggest(str(e["loc"][-1]), tuple(e["loc"]), data))
            for e in errors
            if e["type"] == "extra_forbidden"
        }
        problems += [
            _describe(e, root, data)
            for e in errors
            if not (e["type"] == "missing" and (tuple(e["loc"][:-1]), e["loc"][-1]) in misspelled)
        ]
    if ruleset is not None:
        problems += _duplicate_rule_ids(ruleset, root)
    if problems:
        problems.sort(key=lambda p: p[0])  # stable: same-line problems keep pydantic's order
        raise RuleFileError("\n".join(f"{name}:{line}: {text}" for line, text in problems))
    assert ruleset is not None
    return ruleset


def _duplicate_keys(node: Node, seen: set[int] | None = None) -> list[tuple[int, str]]:
    # PyYAML silently keeps the last of two equal keys; in a rule file that hides a mistake.
    # Aliases make the node graph a DAG (or a cycle): visit each node once (alias bombs).
    seen = set() if seen is None else seen
    if id(node) in seen:
        return []
    seen.add(id(node))
    found: list[tuple[int, str]] = []
    if isinstance(node, MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if isinstance(key, ScalarNode) and key.value in first:
                where = f"first on line {first[key.value]}"
                found.append((line, f"duplicate key {key.value!r} ({where})"))
            elif isinstance(key, ScalarNode):
                first[key.value] = line
            found += _duplicate_keys(value, seen)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            found += _duplicate_keys(item, seen)
    return found


def _duplicate_rule_ids(ruleset: RuleSet, root: Node) -> list[tuple[int, str]]:
    found = []
    for cam, camera in ruleset.cameras.items():
        first: dict[str, int] = {}
        for i, rule in enumerate(camera.rules):
            loc = ("cameras", cam, "rules", i, "id")
            if rule.id in first:
                line, path = _locate(root, loc)
                also = f"also rules[{first[rule.id]}]"
                found.append((line, f"{path}: duplicate rule id {rule.id!r} ({also})"))
            else:
                first[rule.id] = i
    return found


def _locate(root: Node, loc: tuple[Any, ...]) -> tuple[int, str]:
    """The line of the deepest node the path reaches, and the path as `a.b[1].c`.

    pydantic puts the discriminator's value into the path of a rule's errors
    (`rules, 1, zone_intrusion, polygon`); the file has no such key, so it is skipped.
    """
    node: Node | None = root
    mark = root
    path = ""
    for item in loc:
        indexed = isinstance(node, SequenceNode) and isinstance(item, int)
        if isinstance(node, MappingNode):
            entry = next(((k, v) for k, v in node.value if k.value == str(item)), None)
            if entry is None and item == _scalar(node, "type") and item in RULE_TYPES:
                continue
            mark, node = entry if entry is not None else (mark, None)
        elif isinstance(node, SequenceNode) and isinstance(item, int) and item < len(node.value):
            node = mark = node.value[item]
        else:
            node = None
        path += f"[{item}]" if indexed else f"{'.' if path else ''}{item}"
    return mark.start_mark.line + 1, path


def _scalar(node: MappingNode, key: str) -> str | None:
    for k, v in node.value:
        if k.value == key and isinstance(v, ScalarNode):
            return str(v.value)
    return None


def _describe(error: Any, root: Node, data: dict[str, Any]) -> tuple[int, str]:
    loc, kind, msg = tuple(error["loc"]), error["type"], error["msg"]
    if kind == "union_tag_invalid":
        loc += ("type",)
        msg = f"unknown rule type {error['input'].get('type')!r}; expected one of {_types()}"
    elif kind == "union_tag_not_found":
        msg = f"a rule needs a type, one of {_types()}"
    elif kind == "extra_forbidden":
        close = _suggest(str(loc[-1]), loc, data)
        hint = f"did you mean {close!r}?" if close else f"expected one of {_fields(loc, data)}"
        msg = f"unknown key {loc[-1]!r} ({hint})"
    elif kind == "missing":
        msg, loc = f"missing required key {loc[-1]!r}", loc[:-1]
    elif kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif loc[-1:] == ("[key]",):
        msg, loc = f"{msg}: quote the key", loc[:-1]  # `12:` is an int to YAML
    elif kind == "string_pattern_mismatch" and loc[-1:] == ("id",):
        msg = "a rule id is letters, digits and _ . : - (starting with a letter or digit)"
    if isinstance(error.get("input"), bool) and kind != "bool_type":
        msg += " (YAML reads unquoted yes/no/on/off as true/false: quote it)"
    line, path = _locate(root, loc)
    return line, f"{path}: {msg}" if path else msg


def _types() -> str:
    return ", ".join(RULE_TYPES)


def _fields(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    return ", ".join(_model_at(loc, data).model_fields)


def _suggest(key: str, loc: tuple[Any, ...], data: dict[str, Any]) -> str | None:
    """The key the enclosing model accepts that is closest to a misspelled one."""
    close = difflib.get_close_matches(key, list(_model_at(loc, data).model_fields), n=1)
    return close[0] if close else None


def _model_at(loc: tuple[Any, ...], data: dict[str, Any]) -> type[BaseModel]:
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
