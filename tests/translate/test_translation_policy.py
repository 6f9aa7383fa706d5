"""The translation policy (gateway/translate/policy.py) on what real clients send.

Golden inputs are trimmed captures of Claude Code 2.1.197, Codex 0.171.0 and Gemini CLI
0.61.0 (tests/fixtures/clients/). Each mapping cites the API reference it was checked against.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.errors import UnsupportedFeature
from gateway.request.translation import Translation
from gateway.translate import CONVERTERS, policy
from gateway.translate.canonical import ChatRequest
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret

CAPTURES = Path(__file__).parent.parent / "fixtures" / "clients"


def capture(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((CAPTURES / name).read_text())["body"]
    return body


def codex_body() -> dict[str, Any]:
    """Codex's request with its function tools only: this file is about its other fields."""
    body = capture("codex_responses.json")
    body["tools"] = [t for t in body["tools"] if t.get("type") == "function"]
    return body


def cross(source: str, target: str, body: dict[str, Any]) -> tuple[dict[str, Any], ChatRequest]:
    req = CONVERTERS[source].request_to_canonical(body)
    return CONVERTERS[target].request_from_canonical(req, "upstream-model"), req


def mentions(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(mentions(v, key) for v in value.values())
    if isinstance(value, list):
        return any(mentions(v, key) for v in value)
    return False


# -- hints: dropped and reported -----------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "dropped"),
    [
        ("openai", {"cache_control", "context_management"}),
        # Gemini has no per-request user (https://ai.google.dev/api/generate-content).
        ("gemini", {"cache_control", "context_management", "metadata.user_id"}),
    ],
)
def test_claude_code_cache_markers_and_context_editing_are_dropped(
    target: str, dropped: set[str]
) -> None:
    body = capture("claude_code_messages.json")
    out, req = cross("anthropic", target, body)
    assert req.dropped == dropped
    assert not mentions(out, "cache_control") and not mentions(out, "context_management")


def test_gemini_cli_top_k_is_dropped_for_openai() -> None:
    # Chat completions has no top_k (https://platform.openai.com/docs/api-reference/chat/create)
    # and no switch to show reasoning.
    out, req = cross("gemini", "openai", capture("gemini_cli_generate.json"))
    assert req.dropped == {
        "generationConfig.topK",
        "generationConfig.thinkingConfig.includeThoughts",
    }
    assert (out["temperature"], out["top_p"]) == (1, 0.95)
    assert "top_k" not in out and "reasoning_effort" not in out  # no budget was asked


def test_gemini_cli_top_k_reaches_anthropic() -> None:
    # Anthropic takes top_k (https://docs.anthropic.com/en/api/messages#body-top-k); showing
    # thoughts needs thinking on: the medium budget, below max_tokens (4096 by default).
    out, req = cross("gemini", "anthropic", capture("gemini_cli_generate.json"))
    assert req.dropped == set()
    assert out["top_k"] == 64
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 4095}


@pytest.mark.parametrize(
    ("target", "dropped"),
    [
        (
            "openai",
            {"client_metadata", "include", "prompt_cache_key", "reasoning.summary", "store"},
        ),
        # Anthropic shows thinking once it is on: reasoning.summary is mapped, not dropped.
        ("anthropic", {"client_metadata", "include", "prompt_cache_key", "store"}),
    ],
)
def test_codex_metadata_and_cache_keys_are_dropped(target: str, dropped: set[str]) -> None:
    out, req = cross("openai_responses", target, codex_body())
    assert req.dropped == dropped
    for name in ("client_metadata", "include", "prompt_cache_key", "store"):
        assert name not in out


@pytest.mark.parametrize(
    ("source", "body", "dropped"),
    [
        # https://platform.openai.com/docs/api-reference/chat/create: seed, penalties.
        (
            "openai",
            {"seed": 7, "presence_penalty": 0.5, "frequency_penalty": 0.1, "user": "u"},
            {"seed", "presence_penalty", "frequency_penalty"},
        ),
        # https://ai.google.dev/api/generate-content#generationconfig: the same knobs.
        (
            "gemini",
            {"generationConfig": {"seed": 7, "presencePenalty": 0.5, "responseLogprobs": True}},
            {
                "generationConfig.seed",
                "generationConfig.presencePenalty",
                "generationConfig.responseLogprobs",
            },
        ),
    ],
)
def test_sampling_knobs_anthropic_lacks_are_dropped(
    source: str, body: dict[str, Any], dropped: set[str]
) -> None:
    message = {"role": "user", "content": "hi"}
    base = {"messages": [message]} if source == "openai" else {"contents": [_gemini_user()]}
    out, req = cross(source, "anthropic", {**base, **body})
    assert req.dropped == dropped
    assert not {"seed", "presence_penalty", "frequency_penalty"} & out.keys()


def _gemini_user() -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": "hi"}]}


def test_every_name_a_drop_reports_is_a_known_metric_label() -> None:
    seen: set[str] = set()
    for source, target, body in [
        ("anthropic", "gemini", capture("claude_code_messages.json")),
        ("gemini", "openai", capture("gemini_cli_generate.json")),
        ("openai_responses", "openai", capture("codex_responses.json")),  # web_search too
    ]:
        seen |= cross(source, target, body)[1].dropped
    assert seen and seen <= policy.KNOWN_HINTS


# -- structure: mapped ---------------------------------------------------------------------


def _with_system_messages() -> dict[str, Any]:
    """Claude Code's request with system messages inside `messages` (an Anthropic beta)."""
    body = capture("claude_code_messages.json")
    body["system"] = "top"
    body["messages"].insert(1, {"role": "system", "content": "middle"})
    body["messages"].append({"role": "system", "content": [{"type": "text", "text": "end"}]})
    return body


def test_system_messages_inside_messages_go_to_openai_system_messages() -> None:
    # OpenAI takes system messages (https://platform.openai.com/docs/api-reference/chat/create
    # #chat-create-messages): all system text comes first, in its order.
    out, _ = cross("anthropic", "openai", _with_system_messages())
    systems = [m["content"] for m in out["messages"] if m["role"] == "system"]
    assert systems == ["top", "middle", "end"]
    assert out["messages"][3]["role"] != "system"


def test_system_messages_inside_messages_fold_into_gemini_system_instruction() -> None:
    # https://ai.google.dev/api/generate-content#v1beta.models.generateContent:
    # systemInstruction is a Content of text parts.
    out, _ = cross("anthropic", "gemini", _with_system_messages())
    texts = [p["text"] for p in out["systemInstruction"]["parts"]]
    assert texts == ["top", "middle", "end"]
    assert all(c["role"] in ("user", "model") for c in out["contents"])


@pytest.mark.parametrize(
    ("effort", "budget"),
    [("minimal", 1024), ("low", 1024), ("medium", 8192), ("high", 24576)],
)
def test_openai_effort_becomes_the_documented_budget(effort: str, budget: int) -> None:
    # https://ai.google.dev/gemini-api/docs/openai#thinking: low 1,024, medium 8,192,
    # high 24,576; Anthropic budget_tokens >= 1024 and < max_tokens
    # (https://docs.anthropic.com/en/api/messages#body-thinking).
    body = {"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": effort}
    gemini, _ = cross("openai", "gemini", body)
    assert gemini["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": budget,
        "includeThoughts": True,
    }
    anthropic, _ = cross("openai", "anthropic", {**body, "max_tokens": 32000})
    assert anthropic["thinking"] == {"type": "enabled", "budget_tokens": budget}


def test_effort_none_turns_thinking_off() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "none"}
    assert cross("openai", "anthropic", body)[0]["thinking"] == {"type": "disabled"}
    config = cross("openai", "gemini", body)[0]["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 0, "includeThoughts": False}


@pytest.mark.parametrize(
    ("budget", "effort"), [(1024, "low"), (4000, "low"), (8192, "medium"), (31999, "high")]
)
def test_budgets_become_the_nearest_effort(budget: int, effort: str) -> None:
    # https://platform.openai.com/docs/api-reference/chat/create#chat-create-reasoning_effort
    body = capture("claude_code_messages.json")
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    assert cross("anthropic", "openai", body)[0]["reasoning_effort"] == effort
    gemini = {
        "contents": [_gemini_user()],
        "generationConfig": {"thinkingConfig": {"thinkingBudget": budget}},
    }
    assert cross("gemini", "openai", gemini)[0]["reasoning_effort"] == effort


def test_claude_code_thinking_budget_reaches_gemini() -> None:
    out, _ = cross("anthropic", "gemini", capture("claude_code_messages.json"))
    thinking = {"thinkingBudget": 31999, "includeThoughts": True}
    assert out["generationConfig"]["thinkingConfig"] == thinking


def test_responses_effort_and_summary_reach_gemini() -> None:
    # https://platform.openai.com/docs/api-reference/responses/create#responses-create-reasoning
    body = codex_body()
    body["reasoning"] = {"effort": "high", "summary": "auto"}
    out, req = cross("openai_responses", "gemini", body)
    assert out["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 24576,
        "includeThoughts": True,
    }
    assert "reasoning.summary" not in req.dropped


# -- semantics: refused with a reason ------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "extra", "reason"),
    [
        ("openai_responses", {"previous_response_id": "resp_1"}, "keeps no conversation state"),
        ("openai_responses", {"conversation": "conv_1"}, "keeps no conversation state"),
        ("openai_responses", {"background": True}, "background"),
        ("openai", {"audio": {"voice": "alloy", "format": "mp3"}}, "audio"),
        ("anthropic", {"mcp_servers": [{"type": "url", "url": "x"}]}, "MCP"),
        ("gemini", {"cachedContent": "cachedContents/1"}, "cached content"),
    ],
)
def test_what_would_change_the_answer_is_refused(
    source: str, extra: dict[str, Any], reason: str
) -> None:
    bodies: dict[str, dict[str, Any]] = {
        "openai_responses": {"input": "hi"},
        "openai": {"messages": [{"role": "user", "content": "hi"}]},
        "anthropic": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 9},
        "gemini": {"contents": [_gemini_user()]},
    }
    with pytest.raises(UnsupportedFeature, match=reason) as info:
        CONVERTERS[source].request_to_canonical({**bodies[source], **extra})
    assert next(iter(extra)) in info.value.message


def test_background_false_asks_for_nothing() -> None:
    req = CONVERTERS["openai_responses"].request_to_canonical({"input": "hi", "background": False})
    assert req.dropped == set() and req.extra == {}


@pytest.mark.parametrize("target", ["anthropic", "gemini"])
def test_several_choices_are_refused(target: str) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "n": 2}
    with pytest.raises(UnsupportedFeature, match="'n' > 1"):
        cross("openai", target, body)


# -- strict routes -------------------------------------------------------------------------


def test_a_strict_translation_refuses_the_hints_it_would_drop() -> None:
    body = capture("gemini_cli_generate.json")
    _, dropped = Translation("gemini", "openai", body, True).upstream_request("gpt")
    assert "generationConfig.topK" in dropped
    strict = Translation("gemini", "openai", body, True, strict=True)
    with pytest.raises(UnsupportedFeature, match="strict") as info:
        strict.upstream_request("gpt")
    assert "'generationConfig.topK'" in info.value.message


# -- through the real server ---------------------------------------------------------------

CACHED = {"cache_control": {"type": "ephemeral"}}
HINTED = {
    "model": "m",
    "max_tokens": 50,
    "top_k": 5,
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", **CACHED}]}],
}


def test_server_reports_dropped_hints_and_a_strict_route_refuses_them(
    fake_upstream: FakeUpstream,
    policy_repo: PolicyRepo,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    key, admin = new_secret(), new_secret()
    policy_repo.write(
        "providers.yaml",
        f"""
        providers:
          oai:
            type: openai-compatible
            base_url: {fake_upstream.url}/v1
            credentials: [env:FAKE_UPSTREAM_KEY]
            max_retries: 0
        """,
    )
    policy_repo.write(
        "routes.yaml",
        """
        routes:
          lenient: {targets: [oai/up]}
          exact: {targets: [oai/up], translation: strict}
        """,
    )
    policy_repo.write("limits.yaml", "default: {}\ntiers: {}\n")
    policy_repo.write(
        "keys.yaml",
        f"""
        keys:
          - id: k
            hash: "{hash_of(key)}"
        admins:
          - id: ops
            hash: "{hash_of(admin)}"
        """,
    )
    policy_repo.commit("a lenient and a strict route")
    gateway = start_gateway(policy_repo)
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    url = gateway.url + "/v1/messages"
    want = "cache_control, context_management, top_k"
    with httpx.Client(timeout=10) as http:
        whole = http.post(url, headers=headers, json={**HINTED, "model": "lenient"})
        assert whole.status_code == 200, whole.text
        assert whole.headers["x-modelgate-dropped-params"] == want
        streamed = {**HINTED, "model": "lenient", "stream": True}
        with http.stream("POST", url, headers=headers, json=streamed) as stream:
            assert stream.status_code == 200
            assert stream.headers["x-modelgate-dropped-params"] == want
            assert b"message_stop" in stream.read()
        refused = http.post(url, headers=headers, json={**HINTED, "model": "exact"})
        assert refused.status_code == 400
        message = refused.json()["error"]["message"]
        assert "strict" in message and "'top_k'" in message
        assert "x-modelgate-dropped-params" not in refused.headers
        metrics = http.get(gateway.url + "/metrics", headers={"authorization": f"Bearer {admin}"})
    assert 'modelgate_dropped_params_total{param="top_k"} 2.0' in metrics.text
