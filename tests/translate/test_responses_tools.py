"""Golden tests: a Responses client's tools (Codex's) on providers of other protocols.

The request is a real Codex 0.171.0 body (tests/fixtures/clients/codex_request.json, trimmed):
plain function tools, a ``namespace`` tool and ``web_search`` with ``external_web_access:
false``. The upstream answers are the real captures of tests/fixtures/<protocol>/, with the
called function renamed to the flat name the provider was offered.

References checked:
- Responses ``namespace`` tools and ``additional_tools`` input items, and the
  ``namespace`` field of a ``function_call`` output item ("The namespace of the function to
  run"): https://platform.openai.com/docs/api-reference/responses/create
- Tool-name grammars: Anthropic ``^[a-zA-Z0-9_-]{1,128}$``
  (https://docs.anthropic.com/en/api/messages#body-tools-name), Gemini
  ``^[a-zA-Z_][a-zA-Z0-9_.-]{0,63}$`` (https://ai.google.dev/api/caching#FunctionDeclaration),
  OpenAI ``^[a-zA-Z0-9_-]{1,64}$``
  (https://platform.openai.com/docs/api-reference/chat/create#chat-create-tools).
- Web search: Anthropic's ``web_search_20250305`` server tool
  (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/web-search-tool) and Gemini's
  ``googleSearch`` tool (https://ai.google.dev/gemini-api/docs/google-search); OpenAI's
  ``external_web_access: false`` is cache-only search
  (https://platform.openai.com/docs/guides/tools-web-search#live-internet-access).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from gateway.errors import Protocol, UnsupportedFeature
from gateway.request.translation import Translation
from gateway.translate import CONVERTERS
from gateway.translate.sse import SSEParser
from gateway.translate.tool_names import NAME, Origin, ToolNames
from tests.translate.fixtures import load_bytes, load_json

GRAMMARS = {
    "anthropic": re.compile(r"[a-zA-Z0-9_-]{1,128}"),
    "gemini": re.compile(r"[a-zA-Z_][a-zA-Z0-9_.-]{0,63}"),
    "openai": re.compile(r"[a-zA-Z0-9_-]{1,64}"),
}
FLAT_SPAWN = "multi_agent_v1__spawn_agent"
CODEX_FLAT_NAMES = ["exec_command", FLAT_SPAWN, "multi_agent_v1__wait_agent", "get_goal"]
TARGETS = ("openai", "anthropic", "gemini")


def codex_body() -> dict[str, Any]:
    body = load_json("clients/codex_request.json")["body"]
    assert isinstance(body, dict)
    return body


def provider_tool_names(target: str, body: dict[str, Any]) -> list[str]:
    tools = body.get("tools", [])
    if target == "openai":
        return [t["function"]["name"] for t in tools]
    if target == "anthropic":
        return [t["name"] for t in tools if "input_schema" in t]
    return [d["name"] for t in tools for d in t.get("functionDeclarations", ())]


def to_provider(body: dict[str, Any], target: str) -> tuple[dict[str, Any], set[str]]:
    req = CONVERTERS["openai_responses"].request_to_canonical(copy.deepcopy(body))
    out = CONVERTERS[target].request_from_canonical(req, "upstream-model")
    return out, req.dropped


# -- request: flattened names --------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_codex_tools_reach_every_target_as_flat_functions(target: str) -> None:
    out, dropped = to_provider(codex_body(), target)
    names = provider_tool_names(target, out)
    assert names == CODEX_FLAT_NAMES
    for name in names:
        assert all(g.fullmatch(name) for g in GRAMMARS.values()), name
    # web_search is cache-only (external_web_access: false); no target's search is: dropped.
    assert "tools.web_search" in dropped
    assert {"client_metadata", "prompt_cache_key", "store", "include"} <= dropped


def test_namespace_description_reaches_the_model() -> None:
    out, _ = to_provider(codex_body(), "anthropic")
    spawn = next(t for t in out["tools"] if t["name"] == FLAT_SPAWN)
    assert "(multi_agent_v1: Tools for spawning and managing sub-agents.)" in spawn["description"]


def test_additional_tools_items_are_read_like_tools() -> None:
    """Codex may send its tools as an ``additional_tools`` input item instead of ``tools``;
    a later item re-defining a tool replaces it, keeping its place."""
    body = codex_body()
    tools = body.pop("tools")
    body["input"].insert(0, {"type": "additional_tools", "role": "developer", "tools": tools})
    later = copy.deepcopy(tools[0])
    later["description"] = "Runs a command (v2)."
    body["input"].append({"type": "additional_tools", "tools": [later]})
    for target in TARGETS:
        out, _ = to_provider(body, target)
        assert provider_tool_names(target, out) == CODEX_FLAT_NAMES
    out, _ = to_provider(body, "openai")
    assert out["tools"][0]["function"]["description"] == "Runs a command (v2)."


def test_history_calls_of_namespaced_tools_use_the_flat_name() -> None:
    body = codex_body()
    call = {"type": "function_call", "call_id": "call_1", "namespace": "multi_agent_v1"}
    call |= {"name": "spawn_agent", "arguments": "{}"}
    result = {"type": "function_call_output", "call_id": "call_1", "output": "spawned"}
    body["input"] += [call, result]
    out, _ = to_provider(body, "anthropic")
    uses = [b for m in out["messages"] for b in m["content"] if b["type"] == "tool_use"]
    assert [u["name"] for u in uses] == [FLAT_SPAWN]
    out, _ = to_provider(body, "gemini")
    calls = [p["functionCall"] for c in out["contents"] for p in c["parts"] if "functionCall" in p]
    assert [c["name"] for c in calls] == [FLAT_SPAWN]


def test_tool_choice_of_a_namespaced_function() -> None:
    body = codex_body()
    body["tool_choice"] = {"type": "function", "name": "spawn_agent", "namespace": "multi_agent_v1"}
    out, _ = to_provider(body, "openai")
    assert out["tool_choice"] == {"type": "function", "function": {"name": FLAT_SPAWN}}


# -- names: fallback, collisions, stability --------------------------------------------------


def test_names_that_do_not_fit_get_a_stable_hashed_name() -> None:
    long_ns = "mcp_server_" + "x" * 60
    origins = [
        Origin("tool", long_ns),  # too long once joined
        Origin("read.file"),  # a dot: OpenAI and Anthropic refuse it
        Origin("b", "a"),  # a__b, which a plain tool below already has
        Origin("a__b"),
        Origin("run", "ns-1"),
    ]
    names = ToolNames(origins)
    flat = [names.flat(o.name, o.namespace) for o in origins]
    assert flat[3] == "a__b"  # a plain valid name never changes
    assert flat[4] == "ns-1__run"
    assert len(set(flat)) == len(flat)
    for name in flat:
        assert NAME.fullmatch(name)
        assert all(g.fullmatch(name) for g in GRAMMARS.values()), name
    for origin, name in zip(origins, flat, strict=True):
        assert names.origin(name) == origin
    again = ToolNames(reversed(origins))  # derived from the request alone, not its order
    assert [again.flat(o.name, o.namespace) for o in origins] == flat


def test_an_unknown_name_from_the_model_passes_unchanged() -> None:
    names = ToolNames([Origin("spawn_agent", "multi_agent_v1")])
    assert names.origin("made_up") == Origin("made_up")


# -- answers back: whole and streamed --------------------------------------------------------

PROVIDERS = {
    "openai": (Protocol.OPENAI, "openai/chat_response_tool_calls", "openai/chat_stream_tool_calls"),
    "anthropic": (Protocol.ANTHROPIC, "anthropic/response_tool_use", "anthropic/stream_tool_use"),
    "gemini": (Protocol.GEMINI, "gemini/response_function_call", "gemini/stream_function_call"),
}
"""Provider protocol, whole answer (.json) and stream (.sse) calling two tools."""


def translation(provider: Protocol, stream: bool) -> Translation:
    body = codex_body()
    t = Translation("openai_responses", provider.value, body, stream)
    t.upstream_request("upstream-model")
    return t


def calls_of(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: item.get(k) for k in ("name", "namespace")}
        for item in output
        if item["type"] == "function_call"
    ]


@pytest.mark.parametrize("target", TARGETS)
def test_whole_answer_calls_come_back_with_their_namespace(target: str) -> None:
    provider, whole, _ = PROVIDERS[target]
    upstream = json.loads(json.dumps(load_json(whole + ".json")).replace("get_weather", FLAT_SPAWN))
    answer = json.loads(translation(provider, False).client_body(upstream, "gpt-5"))
    calls = calls_of(answer["output"])
    assert {"name": "spawn_agent", "namespace": "multi_agent_v1"} in calls
    # A function the request never offered (the capture's get_time) is left as it is.
    assert all(c["namespace"] is None for c in calls if c["name"] != "spawn_agent")


@pytest.mark.parametrize("target", TARGETS)
def test_streamed_calls_come_back_with_their_namespace(target: str) -> None:
    provider, _, stream = PROVIDERS[target]
    upstream = load_bytes(stream + ".sse").replace(b"get_weather", FLAT_SPAWN.encode())
    t = translation(provider, True)
    translator = t.client_stream("gpt-5", SSEParser(), lambda _: None)
    raw = translator.feed(upstream) + translator.close()
    events = [json.loads(ev.data) for ev in SSEParser().feed(raw)]
    added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
    assert {"name": "spawn_agent", "namespace": "multi_agent_v1"} in calls_of(added)
    completed = next(e for e in events if e["type"] == "response.completed")
    assert {"name": "spawn_agent", "namespace": "multi_agent_v1"} in calls_of(
        completed["response"]["output"]
    )
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert "spawn_agent" in [e["name"] for e in done]


def test_names_the_client_sent_as_they_are_are_not_touched() -> None:
    body = codex_body()
    body["tools"] = [t for t in body["tools"] if t["type"] == "function"]
    t = Translation("openai_responses", "anthropic", body, False)
    upstream = load_json("anthropic/response_tool_use.json")
    answer = json.loads(t.client_body(upstream, "gpt-5"))
    assert calls_of(answer["output"]) == [{"name": "get_weather", "namespace": None}]
    assert "namespace" not in next(i for i in answer["output"] if i["type"] == "function_call")


# -- server tools ----------------------------------------------------------------------------

LIVE_SEARCH = {
    "type": "web_search",
    "filters": {"allowed_domains": ["docs.python.org"]},
    "user_location": {"type": "approximate", "country": "DE", "city": "Berlin"},
    "search_context_size": "low",
}


def with_tools(*tools: dict[str, Any]) -> dict[str, Any]:
    body = codex_body()
    body["tools"] = [t for t in body["tools"] if t["type"] == "function"] + list(tools)
    return body


def test_live_web_search_maps_to_anthropics_server_tool() -> None:
    out, dropped = to_provider(with_tools(LIVE_SEARCH), "anthropic")
    assert out["tools"][-1] == {
        "type": "web_search_20250305",
        "name": "web_search",
        "allowed_domains": ["docs.python.org"],
        "user_location": {"type": "approximate", "country": "DE", "city": "Berlin"},
    }
    assert "tools.web_search" not in dropped
    assert "tools.web_search.search_context_size" in dropped


def test_live_web_search_maps_to_google_search() -> None:
    search = {"type": "web_search_preview", "user_location": LIVE_SEARCH["user_location"]}
    out, dropped = to_provider(with_tools(search), "gemini")
    assert out["tools"][-1] == {"googleSearch": {}}
    assert "functionDeclarations" in out["tools"][0]
    assert dropped >= {"tools.web_search_preview.user_location"}
    assert "tools.web_search_preview" not in dropped


def test_google_search_cannot_honour_a_domain_filter() -> None:
    out, dropped = to_provider(with_tools(LIVE_SEARCH), "gemini")
    assert {"googleSearch": {}} not in out["tools"]
    assert "tools.web_search" in dropped


@pytest.mark.parametrize("target", TARGETS)
def test_a_server_tool_the_target_lacks_is_dropped_and_reported(target: str) -> None:
    body = with_tools({"type": "file_search", "vector_store_ids": ["vs_1"]}, {"type": "web_search"})
    out, dropped = to_provider(body, target)
    assert "tools.file_search" in dropped
    assert provider_tool_names(target, out) == ["exec_command", "get_goal"]
    assert ("tools.web_search" in dropped) == (target == "openai")


@pytest.mark.parametrize("target", TARGETS)
def test_forcing_a_server_tool_is_refused(target: str) -> None:
    body = with_tools({"type": "web_search"})
    body["tool_choice"] = {"type": "web_search"}
    with pytest.raises(UnsupportedFeature, match="forces the web_search tool"):
        to_provider(body, target)


@pytest.mark.parametrize(
    "tool",
    [
        {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}},
        {"type": "local_shell"},
        {"type": "namespace", "name": "ns", "tools": [{"type": "custom", "name": "x"}]},
    ],
)
def test_client_tools_with_their_own_item_types_are_refused(tool: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedFeature, match="Offer it as a 'function' tool"):
        to_provider(with_tools(tool), "anthropic")
