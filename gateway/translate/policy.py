"""The translation policy: what becomes of a request field the provider's protocol lacks.

Three classes (house style rule 12), written down here once; every converter asks this
module and keeps no list of its own:

- **Hints** change how an answer is made, billed or kept, not what it says: sampling knobs,
  client metadata, cache markers, server-side context editing, display-only reasoning
  switches. A target that lacks one drops it, and the drop is reported
  (``ChatRequest.dropped`` -> the ``x-modelgate-dropped-params`` header and the
  ``modelgate_dropped_params`` metric). A ``translation: strict`` route refuses them instead.
- **Structure** with an equivalent is mapped by the converters: system and developer
  messages anywhere in a conversation become the target's system text, in order (OpenAI
  and Anthropic clients' in-conversation system messages included); reasoning settings
  follow ``EFFORT_BUDGETS`` below. Tools (namespaces, server tools) follow
  ``translate.server_tools``, their names ``translate.tool_names``.
- **Semantics** that would change the answer are refused with a 400 that says why
  (``SEMANTICS``; ``n`` > 1, audio and server tools where a converter meets them). A field
  in no list is refused as well: what the gateway does not know may change the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from gateway.errors import UnsupportedFeature
from gateway.translate import server_tools
from gateway.translate.canonical import ChatRequest

# -- hints ---------------------------------------------------------------------------------

HINTS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        # https://platform.openai.com/docs/api-reference/chat/create
        "openai": frozenset(
            {
                "store", "service_tier", "prompt_cache_key", "prompt_cache_retention",
                "safety_identifier", "verbosity", "logprobs", "top_logprobs", "prediction",
                "modalities",  # text is every target's only output; audio needs `audio`
            }
        ),
        # https://docs.anthropic.com/en/api/messages (context_management: the
        # context-management beta; cache_control: automatic prompt caching)
        "anthropic": frozenset(
            {
                "service_tier", "cache_control", "context_management", "inference_geo",
                "speed", "diagnostics", "workspace_id", "user_profile_id",
            }
        ),
        # https://platform.openai.com/docs/api-reference/responses/create; client_metadata
        # is Codex's own field.
        "openai_responses": frozenset(
            {
                "store", "include", "truncation", "service_tier", "safety_identifier",
                "prompt_cache_key", "prompt_cache_retention", "stream_options",
                "client_metadata", "top_logprobs", "max_tool_calls",
            }
        ),
        # https://ai.google.dev/api/generate-content#request-body
        "gemini": frozenset({"safetySettings", "safety_settings", "labels"}),
    }
)  # fmt: skip
"""Top-level request fields, per client protocol, that no other protocol carries over."""

GEMINI_CONFIG_HINTS = frozenset(
    {
        "mediaResolution", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers",
    }
)  # fmt: skip
"""generationConfig fields (camelCase) that are hints; https://ai.google.dev/api/generate-content#generationconfig"""

CACHE_MARKER = "cache_control"
"""Anthropic's prompt-cache marker on system, message and tool blocks."""

CANONICAL_HINTS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "top_k": {"gemini": "generationConfig.topK"},
        "seed": {"gemini": "generationConfig.seed"},
        "presence_penalty": {"gemini": "generationConfig.presencePenalty"},
        "frequency_penalty": {"gemini": "generationConfig.frequencyPenalty"},
        "user": {"anthropic": "metadata.user_id"},
        "metadata": {},
        "parallel_tool_calls": {"anthropic": "tool_choice.disable_parallel_tool_use"},
        "show_thinking": {
            "gemini": "generationConfig.thinkingConfig.includeThoughts",
            "openai_responses": "reasoning.summary",
            "anthropic": "thinking.display",
        },
    }
)
"""Canonical request fields that are hints, and how each client protocol spells them where
it differs from the canonical name. A writer whose target lacks one calls `drop_field`."""

DISPLAY_HINTS = frozenset({"text.verbosity"})
"""Nested hints read into no canonical field (the Responses API's answer-length knob)."""


def _known_names() -> frozenset[str]:
    names = set(DISPLAY_HINTS) | {CACHE_MARKER} | server_tools.REPORTED
    for fields in HINTS.values():
        names |= fields
    names |= {"generationConfig." + k for k in GEMINI_CONFIG_HINTS}
    for canonical, spellings in CANONICAL_HINTS.items():
        names.add(canonical)
        names |= set(spellings.values())
    return frozenset(names)


KNOWN_HINTS = _known_names()
"""Every name a drop can report: the metric's label values are these and "other"."""


def drop(req: ChatRequest, name: str) -> None:
    """Record that the hint ``name`` (as the client spelled it) does not reach the target."""
    req.dropped.add(name)


def drop_field(req: ChatRequest, canonical: str) -> None:
    """A canonical hint the target lacks, reported in the client's spelling."""
    req.dropped.add(CANONICAL_HINTS[canonical].get(req.source, canonical))


def read_top_level(
    body: Mapping[str, Any], protocol: str, known: Iterable[str], req: ChatRequest
) -> None:
    """Sort the fields a reader did not read: hints dropped, semantics refused, the rest
    kept in ``req.extra`` (refused by another protocol's writer: wire.refuse_extra)."""
    rest = body.keys() - set(known)
    if not rest:
        return
    hints = HINTS.get(protocol, frozenset())
    refusals = SEMANTICS.get(protocol, {})
    for name in sorted(rest):
        value = body[name]
        if name in hints:
            if value is not None:
                drop(req, name)
        elif name in refusals:
            if value:  # false, 0, [] and {} ask for nothing
                raise refused(name, refusals[name])
        else:
            req.extra[name] = value


def refuse_hints(dropped: Iterable[str]) -> None:
    """A `translation: strict` route: a hint the target lacks is an error, not a drop."""
    names = sorted(dropped)
    if names:
        raise UnsupportedFeature(
            "This route is set to strict translation, and its provider's protocol cannot "
            f"carry {', '.join(repr(n) for n in names)}. Remove them from the request, or ask "
            "the gateway's operators for a route with lenient translation (which drops and "
            "reports them)."
        )


# -- semantics -----------------------------------------------------------------------------

_NO_STATE = (
    "the gateway keeps no conversation state, and this route's provider does not keep "
    "OpenAI's. Send the whole conversation as 'input' instead."
)

SEMANTICS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "openai": {
            "audio": "the target cannot answer in audio.",
            "web_search_options": "the target has no web search the gateway can turn on.",
            "logit_bias": "token biases depend on OpenAI's tokenizer, which the target lacks.",
        },
        "openai_responses": {
            "previous_response_id": _NO_STATE,
            "conversation": _NO_STATE,
            "background": "background responses are kept by OpenAI; send it without 'background'.",
            "prompt": "a stored prompt template lives at OpenAI; send its text as 'instructions'.",
        },
        "anthropic": {
            "container": "code-execution containers run at Anthropic only.",
            "mcp_servers": "MCP servers are called by Anthropic's API only; run the tools "
            "in the client.",
        },
        "gemini": {
            "cachedContent": "cached content is stored at Google; send its content instead.",
            "cached_content": "cached content is stored at Google; send its content instead.",
        },
    }
)
"""Fields that would change the answer, per client protocol, and why each is refused."""


def refused(name: str, why: str) -> UnsupportedFeature:
    return UnsupportedFeature(f"'{name}' cannot be translated for this route's provider: {why}")


# -- structure: reasoning ------------------------------------------------------------------

EFFORT_BUDGETS: Mapping[str, int] = MappingProxyType(
    {"minimal": 1024, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768}
)
"""OpenAI reasoning effort -> thinking budget in tokens (``none`` is 0: thinking off).

Google's table for its OpenAI-compatible endpoint (minimal and low 1,024, medium 8,192,
high 24,576; https://ai.google.dev/gemini-api/docs/openai#thinking); xhigh, which it lacks,
is Gemini 2.5 Pro's largest budget (https://ai.google.dev/gemini-api/docs/thinking).
Anthropic's ``budget_tokens`` takes the same numbers: at least 1,024 and below
``max_tokens`` (https://docs.anthropic.com/en/api/messages#body-thinking)."""


def effort_from_budget(budget: int) -> str:
    """A budget back to the nearest effort of the table (midpoints between its rows)."""
    if budget <= (EFFORT_BUDGETS["low"] + EFFORT_BUDGETS["medium"]) // 2:
        return "low"
    if budget <= (EFFORT_BUDGETS["medium"] + EFFORT_BUDGETS["high"]) // 2:
        return "medium"
    return "high"


def thinking_budget(req: ChatRequest) -> int | None:
    """The requested reasoning budget in tokens: None = not asked, 0 = off."""
    if req.thinking_budget is not None:
        return req.thinking_budget
    if req.reasoning_effort is None:
        return None
    if req.reasoning_effort == "none":
        return 0
    return EFFORT_BUDGETS.get(req.reasoning_effort, EFFORT_BUDGETS["medium"])
