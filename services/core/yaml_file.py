"""Reading a YAML config file, with every mistake reported as `file:line: where: what`.

pydantic reports a location as a path of keys (`cameras, demo, rules, 1, polygon`); the YAML
node tree composed from the same text maps that path back to the line it came from. A loader
parses with `parse`, collects `duplicate_keys`, `validate`s, turns each error into a problem
with `describe` (its own messages through `special`), adds its cross-item checks and ends with
`raise_problems`, so that one run reports everything wrong with the file.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Problem = tuple[int, str]  # line, message
Loc = tuple[Any, ...]  # pydantic's path: keys and list indexes
ModelAt = Callable[[Loc, dict[str, Any]], type[BaseModel]]  # the model holding loc's last key
Skip = Callable[[MappingNode, Any], bool]  # a path item the file has no key for
Special = Callable[[ErrorDetails, Loc], tuple[Loc, str] | None]  # a file's own messages

M = TypeVar("M", bound=BaseModel)

BOOL_HINT = " (YAML reads unquoted yes/no/on/off as true/false: quote it)"


def read_text(path: Path, error: type[Exception]) -> str:
    """The file's text, or `error("<path>: cannot read: <why>")`."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from exc


def parse(
    text: str, name: str, error: type[Exception], expected: str, *, context: bool = False
) -> tuple[Node, dict[str, Any]]:
    """The node tree (for lines) and the data of a YAML text whose top level is a mapping.

    Invalid YAML raises `error("<name>:<line>: invalid YAML: <why>")`, with `context` also where
    the unclosed bracket or block began; a top level that is no mapping raises
    `error("<name>:1: <expected>")`.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        why = exc.problem or str(exc)
        began = exc.context_mark
        if context and exc.context and began is not None and began is not mark:
            # Where the unclosed bracket or block began is often where the typo is.
            why += f" ({exc.context} on line {began.line + 1})"
        raise error(f"{name}{line}: invalid YAML: {why}") from exc
    except (yaml.YAMLError, RecursionError, ValueError) as exc:  # nesting, 5000-digit ints
        raise error(f"{name}: invalid YAML: {exc}") from exc
    if root is None or not isinstance(data, dict):
        raise error(f"{name}:1: {expected}")
    return root, data


def duplicate_keys(node: Node, seen: set[int] | None = None) -> list[Problem]:
    """Every key that repeats one before it in the same mapping, at the repeat's line."""
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
            found += duplicate_keys(value, seen)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            found += duplicate_keys(item, seen)
    return found


def validate(model: type[M], data: dict[str, Any]) -> tuple[M | None, list[ErrorDetails]]:
    """The validated model and no errors, or None and every error pydantic found."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, exc.errors()


@dataclass(frozen=True)
class Union:
    """A discriminated union in the file: its items (a `noun`) told apart by their `key`.

    pydantic puts an item's tag into the path of its errors (`rules, 1, zone_intrusion,
    polygon`); the file has no such key, so `locate` skips it (`is_tag`), or `untag` takes it
    out of the path beforehand.
    """

    noun: str  # "rule": the item as the messages name it
    types: Mapping[str, Any]  # the tags the union accepts (to their models)
    key: str = "type"

    def names(self) -> str:
        return ", ".join(self.types)

    def is_tag(self, node: MappingNode, item: Any) -> bool:
        """Whether item is the tag of the item `node` is (a `locate` skip)."""
        tag = next(
            (
                str(v.value)
                for k, v in node.value
                if k.value == self.key and isinstance(v, ScalarNode)
            ),
            None,
        )
        return item == tag and item in self.types

    def untag(self, loc: Loc, data: Any) -> Loc:
        """loc without the tags, told by the data: an item's tag right after its own path."""
        kept: list[Any] = []
        parent, tagged = data, None
        for item in loc:
            tag = parent.get(self.key) if isinstance(parent, dict) else None
            if parent is not tagged and isinstance(tag, str) and tag in self.types and item == tag:
                tagged = parent
                continue
            kept.append(item)
            in_dict = isinstance(parent, dict) and item in parent
            in_list = isinstance(parent, list) and isinstance(item, int) and 0 <= item < len(parent)
            parent = parent[item] if in_dict or in_list else None
        return tuple(kept)


def describe(
    error: ErrorDetails,
    root: Node,
    data: dict[str, Any],
    union: Union,
    model_at: ModelAt,
    special: Special | None = None,
    *,
    untag: bool = False,
) -> Problem:
    """One pydantic error as `(line, "where: what")`.

    `special(error, loc)` gives a file's own message and where to report it, or None for the
    generic one. `model_at(loc, data)` is the model that holds loc's last key (to suggest a
    key for a misspelled one). Both see pydantic's loc: with `untag`, its union tags are taken
    out by the data first; else locating skips them by the node tree.
    """
    loc, kind, msg = tuple(error["loc"]), error["type"], error["msg"]
    if untag:
        loc = union.untag(loc, data)
    own = special(error, loc) if special is not None else None
    if own is not None:
        loc, msg = own
    elif kind == "union_tag_invalid":
        loc = (*loc, union.key)
        tag = error["input"].get(union.key)
        msg = f"unknown {union.noun} {union.key} {tag!r}; expected one of {union.names()}"
    elif kind == "union_tag_not_found":
        msg = f"a {union.noun} needs a {union.key}, one of {union.names()}"
    elif kind == "extra_forbidden":
        fields = list(model_at(loc, data).model_fields)
        close = closest(str(loc[-1]), fields)
        hint = f"did you mean {close!r}?" if close else f"expected one of {', '.join(fields)}"
        msg = f"unknown key {loc[-1]!r} ({hint})"
    elif kind == "missing":
        msg, loc = f"missing required key {loc[-1]!r}", loc[:-1]
    elif kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif loc[-1:] == ("[key]",):
        msg, loc = f"{msg}: quote the key", loc[:-1]  # `12:` is an int to YAML
    if isinstance(error.get("input"), bool) and kind != "bool_type":
        msg += BOOL_HINT
    line, path = locate(root, loc, None if untag else union.is_tag)
    return line, f"{path}: {msg}" if path else msg


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to a misspelled word, if any is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return close[0] if close else None


def locate(root: Node, loc: Loc, skip: Skip | None = None) -> tuple[int, str]:
    """The line of the deepest node the path reaches, and the path as `a.b[1].c`.

    An item a mapping has no key for, and `skip(mapping, item)` is true of, is left out.
    """
    node: Node | None = root
    mark = root
    path = ""
    for item in loc:
        indexed = isinstance(node, SequenceNode) and isinstance(item, int)
        if isinstance(node, MappingNode):
            entry = next(((k, v) for k, v in node.value if k.value == str(item)), None)
            if entry is None and skip is not None and skip(node, item):
                continue
            mark, node = entry if entry is not None else (mark, None)
        elif isinstance(node, SequenceNode) and isinstance(item, int) and item < len(node.value):
            node = mark = node.value[item]
        else:
            node = None
        path += f"[{item}]" if indexed else f"{'.' if path else ''}{item}"
    return mark.start_mark.line + 1, path


def raise_problems(problems: list[Problem], name: str, error: type[Exception]) -> None:
    """Raise one `error` listing every problem as `<name>:<line>: <what>`, by line; or none."""
    if problems:
        problems.sort(key=lambda p: p[0])  # stable: same-line problems keep pydantic's order
        raise error("\n".join(f"{name}:{line}: {text}" for line, text in problems))
