"""What the scripted upstream decides for one request, whatever its wire protocol.

A coding agent's conversation through the gateway is played as a two-step script:
1. the prompt carries `TOOL_MARKER` and the request offers the tool the test named: call it
   with the test's arguments;
2. the request carries that tool's result: answer with text quoting the result, so the
   client's final output proves the call and its result made the round trip.
Anything else (titles, side questions, warm-ups) gets plain text, and a request for JSON
output gets an instance of its schema (Gemini CLI's router asks for one before each turn).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_structured import (
    anthropic_schema,
    gemini_schema,
    instance_of,
    openai_chat_schema,
    responses_schema,
)

TOOL_MARKER = "mg-use-the-tool"
PLAIN_TEXT = "Hello from the scripted upstream."
ANSWER_PREFIX = "The tool said: "
PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Seen:
    """What one request offered and carried, read from its protocol's body."""

    tools: list[str]
    tool_results: list[str]
    text: str
    json_schema: dict[str, Any] | None = None
    """What JSON output asks for (fake_structured.NO_SCHEMA: any object); None: not JSON."""


@dataclass
class Script:
    """The test's plan: which tool to call, with which arguments, when the marker shows."""

    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)

    def decide(self, seen: Seen) -> ToolCall | Text:
        if seen.json_schema is not None:
            return Text(json.dumps(instance_of(seen.json_schema)))
        if seen.tool_results:
            return Text(ANSWER_PREFIX + " ".join(seen.tool_results)[-400:])
        if self.tool and TOOL_MARKER in seen.text and self.tool in seen.tools:
            return ToolCall(self.tool, self.arguments)
        return Text(PLAIN_TEXT)


def _texts(value: Any) -> str:
    """Every string inside a JSON value, joined: where a marker or a result may hide."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(_texts(v) for v in value)
    if isinstance(value, dict):
        return " ".join(_texts(v) for v in value.values())
    return ""


def read_openai_chat(body: dict[str, Any]) -> Seen:
    tools = [t.get("function", {}).get("name", "") for t in body.get("tools") or []]
    messages = body.get("messages") or []
    results = [_texts(m.get("content")) for m in _after_last_user(messages, "role", "tool")]
    return Seen(tools, results, _texts(messages), openai_chat_schema(body))


def read_responses(body: dict[str, Any]) -> Seen:
    tools: list[str] = []
    for tool in body.get("tools") or []:
        tools.append(tool.get("name", ""))
        tools.extend(t.get("name", "") for t in tool.get("tools") or [])  # namespaces
    items = body.get("input") or []
    items = items if isinstance(items, list) else [{"content": items}]
    results = [
        _texts(i.get("output")) for i in _after_last_user(items, "type", "function_call_output")
    ]
    return Seen(tools, results, _texts(items), responses_schema(body))


def read_anthropic(body: dict[str, Any]) -> Seen:
    tools = [t.get("name", "") for t in body.get("tools") or []]
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    content = last.get("content") if last.get("role") == "user" else None
    results = [
        _texts(block.get("content"))
        for block in (content if isinstance(content, list) else [])
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]
    return Seen(tools, results, _texts(messages), anthropic_schema(body))


def read_gemini(body: dict[str, Any]) -> Seen:
    tools = [
        d.get("name", "")
        for t in body.get("tools") or []
        for d in t.get("functionDeclarations") or []
    ]
    contents = body.get("contents") or []
    parts = (contents[-1].get("parts") or []) if contents else []
    results = [
        json.dumps(p["functionResponse"].get("response")) for p in parts if "functionResponse" in p
    ]
    return Seen(tools, results, _texts(contents), gemini_schema(body))


def _after_last_user(items: list[Any], key: str, kind: str) -> list[dict[str, Any]]:
    """The items of `kind` that follow the conversation's last user turn (this turn's results)."""
    found: list[dict[str, Any]] = []
    for item in reversed(items):
        if not isinstance(item, dict):
            continue
        if item.get(key) == kind:
            found.append(item)
        elif item.get("role") == "user":
            break
    return list(reversed(found))
