"""The canonical chat representation every protocol converts to and from.

Translation goes client -> canonical -> provider, so each protocol needs one pair of
converters. Field meanings follow the OpenAI chat semantics where protocols differ
(e.g. ``prompt_tokens`` includes cached tokens; ``completion_tokens`` includes reasoning).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "assistant"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]
ToolChoiceMode = Literal["auto", "none", "required", "tool"]
ResponseFormatType = Literal["text", "json_object", "json_schema"]


# -- message parts -------------------------------------------------------------------------


@dataclass(slots=True)
class TextPart:
    text: str


@dataclass(slots=True)
class ImagePart:
    """An image given inline (base64 ``data`` + ``media_type``) or by ``url``."""

    media_type: str = ""
    data: str | None = None
    url: str | None = None
    detail: str | None = None


@dataclass(slots=True)
class ToolCallPart:
    id: str
    name: str
    arguments: str
    """The arguments as JSON text (what OpenAI sends; parsed only when a protocol needs it)."""
    signature: str | None = None
    """Gemini's opaque thoughtSignature on a function call, kept for the round trip."""
    namespace: str | None = None
    """The client's tool namespace (Responses ``namespace`` tools); set on the way back only,
    ``name`` then being the name inside it (see translate.tool_names)."""


@dataclass(slots=True)
class ToolResultPart:
    call_id: str
    content: list[TextPart | ImagePart]
    is_error: bool = False


@dataclass(slots=True)
class ThinkingPart:
    """Model reasoning. ``signature`` is opaque; ``redacted`` means ``text`` is opaque data."""

    text: str
    signature: str | None = None
    redacted: bool = False


Part = TextPart | ImagePart | ToolCallPart | ToolResultPart | ThinkingPart


@dataclass(slots=True)
class Message:
    """A turn. Tool results travel in ``user`` turns (as Anthropic and Gemini do)."""

    role: Role
    parts: list[Part]


# -- request -------------------------------------------------------------------------------


@dataclass(slots=True)
class Tool:
    name: str
    description: str | None
    parameters: dict[str, Any]
    """JSON Schema of the arguments object."""


@dataclass(slots=True)
class ServerTool:
    """A tool the provider runs itself (a web search), as the client offered it."""

    kind: str
    """The client's tool type, e.g. ``web_search_preview``."""
    options: dict[str, Any] = field(default_factory=dict)
    """The client's other fields of the tool, read by `translate.server_tools`."""


@dataclass(slots=True)
class ToolChoice:
    mode: ToolChoiceMode
    name: str | None = None
    """The forced tool when ``mode`` is ``tool``."""


@dataclass(slots=True)
class ResponseFormat:
    type: ResponseFormatType
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass(slots=True)
class ChatRequest:
    model: str
    messages: list[Message]
    system: list[str] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    response_format: ResponseFormat | None = None
    stream: bool = False
    include_usage: bool = False
    """The client asked for the usage chunk (OpenAI ``stream_options.include_usage``)."""
    n: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    reasoning_effort: str | None = None
    """none | minimal | low | medium | high (OpenAI's words)."""
    thinking_budget: int | None = None
    """Reasoning token budget; 0 means thinking explicitly off."""
    user: str | None = None
    metadata: dict[str, Any] | None = None
    source: str = ""
    """The protocol the request was read from."""
    show_thinking: bool | None = None
    """The client asked to see the model's reasoning (Gemini ``includeThoughts``, Responses
    ``reasoning.summary``, Anthropic ``thinking.display``); a display switch, not a budget."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields of ``source`` with no canonical form; another protocol refuses them."""
    dropped: set[str] = field(default_factory=set)
    """Hints the target cannot carry, as the client spelled them (see translate.policy)."""
    server_tools: list[ServerTool] = field(default_factory=list)
    """Tools the provider runs itself, offered to the model (see translate.server_tools)."""


# -- response ------------------------------------------------------------------------------


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_prompt_tokens: int = 0
    """Prompt tokens read from a cache (included in ``prompt_tokens``)."""
    cache_write_tokens: int = 0
    """Prompt tokens written to a cache (included in ``prompt_tokens``)."""
    reasoning_tokens: int = 0
    """Reasoning tokens (included in ``completion_tokens``)."""

    @classmethod
    def cache_apart(cls, uncached: int, cache_read: int, cache_write: int, output: int) -> Usage:
        """Counts reported as Anthropic and Bedrock do: the prompt's uncached tokens, its cache
        reads and its cache writes apart (canonical ``prompt_tokens`` counts all three)."""
        prompt = uncached + cache_read + cache_write
        return cls(
            prompt_tokens=prompt,
            completion_tokens=output,
            total_tokens=prompt + output,
            cached_prompt_tokens=cache_read,
            cache_write_tokens=cache_write,
        )

    @property
    def uncached_prompt_tokens(self) -> int:
        """The prompt's tokens neither read from nor written to a cache."""
        return max(self.prompt_tokens - self.cached_prompt_tokens - self.cache_write_tokens, 0)


def count(value: object) -> int:
    """A reported token count: 0 when it is missing, negative or not a whole number (an
    upstream's odd figure must neither break a reader nor lower a bill)."""
    return value if isinstance(value, int) and value > 0 else 0


def counts(raw: dict[str, Any], key: str) -> dict[str, Any]:
    """A nested object of counts (`prompt_tokens_details`...), empty when absent or odd."""
    found = raw.get(key)
    return found if isinstance(found, dict) else {}


@dataclass(slots=True)
class ChatResponse:
    id: str
    model: str
    parts: list[Part]
    finish_reason: FinishReason
    usage: Usage | None = None
    stop_sequence: str | None = None
    created: int = 0


# -- stream events -------------------------------------------------------------------------


@dataclass(slots=True)
class Start:
    id: str
    model: str


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ThinkingDelta:
    """Reasoning text; a ``signature`` closes the current thinking block."""

    text: str
    signature: str | None = None
    redacted: bool = False


@dataclass(slots=True)
class ToolCallStart:
    index: int
    """Position of the call among this response's tool calls (0, 1, ...)."""
    id: str
    name: str
    signature: str | None = None
    namespace: str | None = None
    """As on `ToolCallPart`."""


@dataclass(slots=True)
class ToolCallArgsDelta:
    index: int
    partial_json: str


@dataclass(slots=True)
class Finish:
    reason: FinishReason
    stop_sequence: str | None = None


@dataclass(slots=True)
class StreamError:
    """The upstream reported a failure mid-stream."""

    message: str


StreamEvent = (
    Start
    | TextDelta
    | ThinkingDelta
    | ToolCallStart
    | ToolCallArgsDelta
    | Finish
    | Usage
    | StreamError
)
