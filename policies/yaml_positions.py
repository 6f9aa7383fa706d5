"""Where things are in a YAML file: line and column for a pydantic error location.

Only used when something is wrong: the fast path never builds this. The tree is built from
ruamel.yaml's event stream (libyaml through ruamel.yaml.clib when present), because a
round-trip load of a 10,000-key file takes seconds while the event stream takes a fraction.
The same pass finds what a loader would refuse: syntax errors, duplicate keys, unknown
aliases and extra documents, each with its own position.

It runs on broken, possibly hostile, commits, so its work is bounded: it stops at nesting
deeper than policies.bounds.MAX_DEPTH (a finding) and after MAX_EVENTS events (later nodes
are then placed at their deepest mapped ancestor), and the pure-Python parser, ten times
slower than libyaml, only reads files up to PURE_PARSER_MAX_CHARS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    DocumentStartEvent,
    Event,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
)
from ruamel.yaml.reader import ReaderError

from policies.bounds import MAX_DEPTH

Loc = Sequence[str | int]
KEY_MARK = "[key]"
"""pydantic's marker for an error in a mapping key rather than its value."""
MAX_EVENTS = 250_000
"""Parse events mapped per file (about 0.5 s; a 10,000-key file has 180,000)."""
PURE_PARSER_MAX_CHARS = 1024 * 1024


@dataclass(frozen=True)
class Finding:
    """A problem in one file at 0-based line and col, before it is tied to a file name."""

    line: int
    col: int
    message: str


class _Node:
    __slots__ = ("col", "line")

    def __init__(self, line: int, col: int) -> None:
        self.line, self.col = line, col


class _Map(_Node):
    __slots__ = ("entries",)

    def __init__(self, line: int, col: int) -> None:
        super().__init__(line, col)
        self.entries: dict[str, tuple[int, int, _Node]] = {}
        """key text -> (key line, key col, value node)."""


class _Seq(_Node):
    __slots__ = ("items",)

    def __init__(self, line: int, col: int) -> None:
        super().__init__(line, col)
        self.items: list[_Node] = []


class SourceMap:
    """Positions of the nodes of one YAML document."""

    def __init__(self, root: _Node | None, findings: list[Finding]) -> None:
        self._root = root
        self.findings = findings
        """Structural problems: duplicate keys, unknown aliases, extra documents."""

    @classmethod
    def build(cls, text: str, error_line: int | None = None) -> SourceMap:
        """Map `text`; raises YamlSyntaxError where the YAML cannot be parsed.

        libyaml (fast) reads YAML 1.1 and refuses a few YAML 1.2 texts, such as a URL in a
        flow mapping; where it refuses, ruamel's own YAML 1.2 parser decides, unless libyaml
        agrees on the line of the error (`error_line`, 1-based) found by yaml_rs.
        """
        try:
            return cls._build(text, pure=False)
        except YamlSyntaxError as exc:
            if error_line is not None and error_line - 1 in exc.lines:
                raise
            if len(text) > PURE_PARSER_MAX_CHARS:
                raise  # libyaml's reading is good enough; a second parse would take seconds
        return cls._build(text, pure=True)

    @classmethod
    def _build(cls, text: str, pure: bool) -> SourceMap:
        builder = _Builder()
        try:
            for count, event in enumerate(YAML(typ="safe", pure=pure).parse(text)):
                if count >= MAX_EVENTS or not builder.feed(event):
                    break
        except MarkedYAMLError as exc:
            marks = (exc.problem_mark, exc.context_mark)
            lines = frozenset(m.line for m in marks if m is not None)
            raise YamlSyntaxError(_marked_finding(exc, text), lines) from None
        except ReaderError as exc:
            raise YamlSyntaxError(_reader_finding(exc, text)) from None
        except YAMLError as exc:  # unmarked: nothing better than the top of the file
            raise YamlSyntaxError(Finding(0, 0, f"YAML syntax error: {exc}")) from None
        return cls(builder.root, builder.findings)

    def position(self, loc: Loc, on_key: bool = False) -> tuple[int, int]:
        """0-based (line, col) of the node at `loc`, or of its deepest existing ancestor.

        `on_key` points at the last mapping key itself (an unknown field) instead of its
        value; pydantic's `[key]` marker in `loc` does the same.
        """
        if loc and loc[-1] == KEY_MARK:
            loc, on_key = loc[:-1], True
        node = self._root
        if node is None:
            return (0, 0)
        where = (node.line, node.col)
        for index, part in enumerate(loc):
            last = index == len(loc) - 1
            if isinstance(node, _Map):
                entry = _lookup(node, part)
                if entry is None:
                    break
                key_line, key_col, child = entry
                where = (key_line, key_col) if last and on_key else (child.line, child.col)
                node = child
            elif isinstance(node, _Seq) and isinstance(part, int) and 0 <= part < len(node.items):
                node = node.items[part]
                where = (node.line, node.col)
            else:
                break
        return where


class YamlSyntaxError(Exception):
    """The text is not YAML; `finding` says where and why."""

    def __init__(self, finding: Finding, lines: frozenset[int] = frozenset()) -> None:
        super().__init__(finding.message)
        self.finding = finding
        self.lines = lines | {finding.line}
        """0-based lines the parser named: where it failed, and what it was parsing."""


def _lookup(node: _Map, part: str | int) -> tuple[int, int, _Node] | None:
    text = part if isinstance(part, str) else str(part)
    entry = node.entries.get(text)
    if entry is None and not isinstance(part, str):
        entry = node.entries.get(text.lower())  # True -> "true", None -> "none"
    return entry


class _Builder:
    """Turns parse events into a position tree, noting what a strict loader refuses."""

    def __init__(self) -> None:
        self.root: _Node | None = None
        self.findings: list[Finding] = []
        self._stack: list[_Node] = []
        self._pending_key: list[tuple[str, int, int] | None] = []
        self._anchors: dict[str, _Node] = {}
        self._documents = 0

    def feed(self, event: Event) -> bool:
        """Take one event; False when the rest of the stream must not be read."""
        if isinstance(event, DocumentStartEvent):
            self._documents += 1
            if self._documents == 2:
                self._note(
                    event,
                    "a policy file holds one YAML document: remove this '---' "
                    "and what follows, or move it to a file of its own",
                )
            return True
        if self._documents > 1:
            return True
        if isinstance(event, CollectionEndEvent):
            self._stack.pop()
            self._pending_key.pop()
            return True
        node = self._node_for(event)
        if node is None:
            return True
        self._attach(node, event)
        if isinstance(event, MappingStartEvent | SequenceStartEvent):
            if len(self._stack) == MAX_DEPTH:
                message = (
                    f"nested more than {MAX_DEPTH} levels deep: a policy needs a few levels "
                    "of mappings and lists; check the brackets and indentation here"
                )
                self._note(event, message)
                return False
            self._stack.append(node)
            self._pending_key.append(None)
        return True

    def _node_for(self, event: Event) -> _Node | None:
        line, col = event.start_mark.line, event.start_mark.column
        node: _Node
        if isinstance(event, MappingStartEvent):
            node = _Map(line, col)
        elif isinstance(event, SequenceStartEvent):
            node = _Seq(line, col)
        elif isinstance(event, ScalarEvent):
            node = _Node(line, col)
        elif isinstance(event, AliasEvent):
            target = self._anchors.get(event.anchor or "")
            if target is None:
                self._note(
                    event,
                    f"alias '*{event.anchor}' refers to no anchor: define "
                    f"'&{event.anchor}' before using it",
                )
                target = _Node(line, col)
            return target
        else:
            return None
        anchor = getattr(event, "anchor", None)
        if anchor:
            self._anchors[anchor] = node
        return node

    def _attach(self, node: _Node, event: Event) -> None:
        if not self._stack:
            self.root = node
            return
        parent = self._stack[-1]
        if isinstance(parent, _Seq):
            parent.items.append(node)
            return
        assert isinstance(parent, _Map)
        pending = self._pending_key[-1]
        if pending is None:
            # This node is a key. Only scalar keys can be named by a pydantic location.
            text = event.value if isinstance(event, ScalarEvent) else f"<{id(node)}>"
            self._pending_key[-1] = (text, node.line, node.col)
            return
        text, key_line, key_col = pending
        self._pending_key[-1] = None
        earlier = parent.entries.get(text)
        if earlier is not None:
            message = f"duplicate key '{text}' (also at line {earlier[0] + 1}): keep only one"
            self.findings.append(Finding(key_line, key_col, message))
        parent.entries[text] = (key_line, key_col, node)  # the later one wins, as in yaml_rs

    def _note(self, event: Event, message: str) -> None:
        self.findings.append(Finding(event.start_mark.line, event.start_mark.column, message))


def _marked_finding(exc: MarkedYAMLError, text: str) -> Finding:
    mark = exc.problem_mark or exc.context_mark
    if exc.context_mark is not None and mark is not None and mark.index >= len(text.rstrip()):
        mark = exc.context_mark  # "got <stream end>": point at what was left open instead
    line, col = (mark.line, mark.column) if mark is not None else (0, 0)
    problem = exc.problem or exc.context or "not valid YAML"
    message = f"YAML syntax error: {problem}"
    if exc.context and exc.problem:
        message += f" ({exc.context})"
    if _char_at(text, line, col) == "\t":
        message += "; indent with spaces, YAML does not allow tabs here"
    else:
        message += "; check the indentation, quotes and brackets around here"
    return Finding(line, col, message)


def _reader_finding(exc: ReaderError, text: str) -> Finding:
    position = max(0, int(exc.position))
    before = text[:position]
    line = before.count("\n")
    col = position - (before.rfind("\n") + 1)
    return Finding(line, col, f"YAML cannot contain this character ({exc.reason}): remove it")


def _char_at(text: str, line: int, col: int) -> str:
    lines = text.split("\n", line + 1)
    if line < len(lines) and col < len(lines[line]):
        return lines[line][col]
    return ""
