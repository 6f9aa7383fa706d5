"""Surgical YAML edits: change one value, add or remove one entry, leave every other byte.

ruamel.yaml's parser gives each node its exact span; an edit splices new text into that span
and nothing else, so comments, order, quoting and blank lines elsewhere in the file stay
byte for byte. New values are written in the file's own indentation, in flow style for
small collections (`limits: {rpm: 300}`), as the policy reference writes them.

A path names a node from the root: mapping keys (str) and sequence indices (int).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    DocumentStartEvent,
    Event,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
)

from policies.yaml_render import render_block, render_flow, render_item, render_scalar

Path = Sequence[str | int]


class YamlEditError(Exception):
    """The requested edit does not fit the file's structure."""


@dataclass
class Node:
    start: int
    end: int
    """Character offsets; for a block collection `end` is where its last content ends."""
    col: int
    kind: str
    """"scalar", "map" or "seq"."""
    flow: bool = False
    style: str | None = None
    value: str | None = None
    keys: list[Node] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)

    def entry(self, key: str) -> int | None:
        """Index of the mapping entry named `key`."""
        return next((i for i, k in enumerate(self.keys) if k.value == key), None)


def parse(text: str) -> Node | None:
    """The node tree of `text`'s first document (None when the document is empty)."""
    stack: list[Node] = []
    root: Node | None = None
    for event in YAML(typ="safe", pure=False).parse(text):
        if isinstance(event, DocumentStartEvent) and root is not None:
            break
        if isinstance(event, CollectionEndEvent):
            done = stack.pop()
            done.end = event.end_mark.index if done.flow else _content_end(done)
            continue
        node = _node(event)
        if node is None:
            continue
        if stack:
            parent = stack[-1]
            if parent.kind == "map" and len(parent.keys) == len(parent.children):
                parent.keys.append(node)
            else:
                parent.children.append(node)
        else:
            root = node
        if node.kind != "scalar":
            stack.append(node)
    return root


def _node(event: Event) -> Node | None:
    mark = event.start_mark
    if isinstance(event, ScalarEvent):
        style = event.style or None
        return Node(
            mark.index, event.end_mark.index, mark.column, "scalar", style=style, value=event.value
        )
    if isinstance(event, MappingStartEvent | SequenceStartEvent):
        kind = "map" if isinstance(event, MappingStartEvent) else "seq"
        return Node(mark.index, mark.index, mark.column, kind, flow=bool(event.flow_style))
    if isinstance(event, AliasEvent):
        raise YamlEditError("the file uses YAML aliases; edit it by hand")
    return None


def _content_end(node: Node) -> int:
    last = node.children[-1] if node.children else None
    return last.end if last is not None else node.end


# edits ------------------------------------------------------------------------------------


def set_value(text: str, path: Path, value: Any) -> str:
    """`text` with the node at `path` set to `value` (a mapping entry is added if missing)."""
    root = parse(text)
    nl = _newline(text)
    if root is None:
        return _append_top(text, path, value, nl)
    parent, last = _walk(root, path[:-1]), path[-1]
    if parent is not None and _is_null(parent) and path[:-1]:
        return set_value(text, path[:-1], {last: value} if isinstance(last, str) else [value])
    if parent is None:
        # The parent itself is missing: create it holding just this entry.
        return set_value(text, path[:-1], {last: value}) if path[:-1] else text
    if parent.kind == "map" and isinstance(last, str):
        index = parent.entry(last)
        if index is None:
            return _insert_entry(text, parent, last, value, nl)
        return _replace(text, parent.keys[index], parent.children[index], value, path, nl)
    if parent.kind == "seq" and isinstance(last, int) and 0 <= last < len(parent.children):
        node = parent.children[last]
        if node.kind == "map" and isinstance(value, dict):
            return _merge(text, node, value, path)
        return _splice(text, node.start, node.end, render_flow(value))
    raise YamlEditError(f"cannot set {_show(path)}: it does not match the file's structure")


def delete(text: str, path: Path) -> str:
    """`text` without the mapping entry or sequence item at `path` (unchanged if absent)."""
    root = parse(text)
    parent = _walk(root, path[:-1]) if root is not None else None
    if parent is None:
        return text
    last = path[-1]
    if parent.kind == "map" and isinstance(last, str):
        index = parent.entry(last)
        return text if index is None else _delete_entry(text, parent, index)
    if parent.kind == "seq" and isinstance(last, int) and 0 <= last < len(parent.children):
        return _delete_item(text, parent, last)
    return text


def append(text: str, path: Path, value: Any) -> str:
    """`text` with `value` appended to the sequence at `path` (created if missing)."""
    root = parse(text)
    node = _walk(root, path) if root is not None else None
    nl = _newline(text)
    if node is None or _is_null(node):
        return set_value(text, path, [value])
    if node.kind != "seq":
        raise YamlEditError(f"{_show(path)} is not a list")
    if node.flow:
        if not node.children and isinstance(value, dict):
            return set_value(text, path, [value])  # `keys: []` becomes a block list
        before = ", " if node.children else ""
        at = node.children[-1].end if node.children else node.start + 1
        return _splice(text, at, at, before + render_flow(value))
    first = node.children[0]
    item_col = first.col if first.kind == "map" and not first.flow else None
    at = _insertion_point(text, node.end, node.col)
    return _splice(text, at, at, nl + render_item(value, node.col, nl, item_col))


def _walk(node: Node | None, path: Path) -> Node | None:
    for part in path:
        if node is None:
            return None
        if node.kind == "map" and isinstance(part, str):
            index = node.entry(part)
            node = None if index is None else node.children[index]
        elif node.kind == "seq" and isinstance(part, int) and 0 <= part < len(node.children):
            node = node.children[part]
        else:
            return None
    return node


def _replace(text: str, key: Node, node: Node, value: Any, path: Path, nl: str) -> str:
    if node.kind == "map" and isinstance(value, dict) and value:
        return _merge(text, node, value, path)
    if node.kind == "scalar":
        empty = node.value == "" and node.style is None
        if empty and isinstance(value, dict | list) and value:
            # `tiers:` with nothing after it: write the value as a block below the key.
            block = render_block(value, key.col + 2, nl)
            return _splice(text, key.end, _line_end(text, key.end), ":" + nl + block)
        if isinstance(value, dict | list):
            return _splice(text, node.start, node.end, render_flow(value))
        return _splice(text, node.start, node.end, render_scalar(value, node.style))
    if node.flow and not node.children and _is_mappings(value):
        # `keys: []` getting its first key: a block list below the key reads best.
        block = nl.join(render_item(v, key.col + 2, nl) for v in value)
        return _splice(text, key.end, node.end, ":" + nl + block)
    if node.flow:
        return _splice(text, node.start, node.end, render_flow(value))
    if node.kind == "seq" and isinstance(value, list) and value:
        lines = [render_item(v, node.col, nl) for v in value]
        return _splice(text, node.start, node.end, (nl.join(lines)).lstrip(" "))
    return _splice(text, key.end, node.end, ": " + render_flow(value))


def _merge(text: str, node: Node, value: dict[str, Any], path: Path) -> str:
    """Set each field of a mapping in turn (removing those whose value is `...`)."""
    for name, item in value.items():
        text = delete(text, [*path, name]) if item is ... else set_value(text, [*path, name], item)
    return text


def _insert_entry(text: str, parent: Node, key: str, value: Any, nl: str) -> str:
    entry = f"{render_scalar(key)}: {render_flow(value)}"
    if parent.flow:
        if parent.children:
            at = parent.children[-1].end
            return _splice(text, at, at, ", " + entry)
        return _splice(text, parent.start, parent.end, "{" + entry + "}")
    col = parent.keys[0].col
    sibling = parent.children[-1]
    if _is_mappings(value):
        body = nl.join(render_item(v, col + 2, nl) for v in value)
        entry = f"{' ' * col}{render_scalar(key)}:{nl}{body}"
    elif isinstance(value, dict) and value and (col == 0 or _is_block_map(sibling)):
        inner = sibling.keys[0].col if _is_block_map(sibling) else col + 2
        entry = f"{' ' * col}{render_scalar(key)}:{nl}{render_block(value, inner, nl)}"
    else:
        entry = " " * col + entry
    at = _insertion_point(text, parent.end, col)
    return _splice(text, at, at, nl + entry)


def _delete_entry(text: str, parent: Node, index: int) -> str:
    key, node = parent.keys[index], parent.children[index]
    if parent.flow:
        return _delete_flow(text, parent, index, key.start, node.end)
    if len(parent.keys) == 1:
        return _splice(text, parent.start, parent.end, "{}")
    line_start = _line_start(text, key.start)
    if text[line_start : key.start].strip():  # `- id: x`: keep the dash for the next field
        return (
            _splice(text, key.start, parent.keys[index + 1].start, "")
            if index + 1 < len(parent.keys)
            else _splice(text, key.start, node.end, "")
        )
    return _remove_lines(text, line_start, _after_line(text, node.end))


def _delete_item(text: str, parent: Node, index: int) -> str:
    node = parent.children[index]
    if parent.flow:
        return _delete_flow(text, parent, index, node.start, node.end)
    if len(parent.children) == 1:
        return _splice(text, parent.start, parent.end, "[]")
    dash = text.rfind("-", 0, node.start + 1)
    return _remove_lines(text, _line_start(text, dash), _after_line(text, node.end))


def _delete_flow(text: str, parent: Node, index: int, start: int, end: int) -> str:
    count = len(parent.children)
    if count == 1:
        return _splice(text, parent.start + 1, parent.end - 1, "")
    if index + 1 < count:
        following = parent.keys[index + 1] if parent.kind == "map" else parent.children[index + 1]
        return _splice(text, start, following.start, "")
    previous = parent.children[index - 1]
    return _splice(text, previous.end, end, "")


def _append_top(text: str, path: Path, value: Any, nl: str) -> str:
    """An empty document gets its first top-level entry."""
    if len(path) != 1 or not isinstance(path[0], str):
        raise YamlEditError(f"cannot set {_show(path)} in an empty file")
    key = render_scalar(path[0])
    if _is_mappings(value):
        body = f"{key}:{nl}" + nl.join(render_item(v, 2, nl) for v in value)
    elif isinstance(value, dict) and value:
        body = f"{key}:{nl}" + render_block(value, 2, nl)
    else:
        body = f"{key}: {render_flow(value)}"
    prefix = text if not text or text.endswith(("\n", "\r")) else text + nl
    return prefix + body + nl


def _is_mappings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _is_null(node: Node) -> bool:
    plain = node.style is None
    return node.kind == "scalar" and plain and node.value in ("", "~", "null", "Null", "NULL")


def _is_block_map(node: Node) -> bool:
    return node.kind == "map" and not node.flow and bool(node.keys)


def _insertion_point(text: str, end: int, col: int) -> int:
    """The end of the line holding `end`, moved past the comment lines right below it that
    are indented deeper than `col` (commented-out fields of the entry above belong to it)."""
    at = _line_end(text, end)
    while True:
        following = _after_line(text, at)
        if following >= len(text):
            return at
        line = text[following : _line_end(text, following)]
        stripped = line.lstrip(" ")
        if not stripped.startswith("#") or len(line) - len(stripped) <= col:
            return at
        at = _line_end(text, following)


def _remove_lines(text: str, start: int, end: int) -> str:
    """Remove the whole lines in [start, end); a blank line left doubled goes too."""
    before_blank = start >= 1 and not text[_line_start(text, start - 1) : start].strip()
    after_blank = end >= len(text) or not text[end : _after_line(text, end)].strip()
    if before_blank and after_blank and start >= 1:
        start = _line_start(text, start - 1)
    return text[:start] + text[end:]


def _splice(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _line_start(text: str, at: int) -> int:
    return text.rfind("\n", 0, at) + 1


def _line_end(text: str, at: int) -> int:
    """Where the line holding `at` ends (before its line break), trailing comment included."""
    end = text.find("\n", at)
    if end == -1:
        return len(text)
    return end - 1 if end > 0 and text[end - 1] == "\r" else end


def _after_line(text: str, at: int) -> int:
    end = text.find("\n", at)
    return len(text) if end == -1 else end + 1


def _show(path: Path) -> str:
    return ".".join(str(p) for p in path) or "(the document)"
