"""Stage ④ and ⑥ for cross-protocol calls: one request's translation, both ways.

Pass-through never comes here. A plan makes a Translation per target (failover may cross
protocols); it converts the client's body to the provider's, and the provider's answer or
stream back to the client's dialect. The hints the provider's dialect could not carry are
returned with the upstream body (``dropped``), or refused on a strict route (see
gateway.translate.policy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway.errors import BadRequest
from gateway.translate import (
    CONVERTERS,
    PROVIDER_CONVERTERS,
    Converter,
    ProviderSide,
    StreamParser,
    StreamTranslator,
    policy,
)
from gateway.translate.openai_responses_tools import tool_names
from gateway.translate.tool_names import ToolNames

LARGE_BODY_BYTES = 16 * 1024
"""Client bodies above this size are planned on a worker thread (gateway.request.plan).

Translation is pure Python, linear in the body but up to about 150 ns a byte (a 5 MiB body
of one-word messages takes 0.8 s): on the loop it would hold every other client up that
long. Below this size it costs the loop a few milliseconds at most."""
SWITCH_INTERVAL_S = 0.001
"""The interpreter's thread switch interval in a serving process: how soon a translating
thread hands the interpreter back to the loop. At Python's default (5 ms), two large
translations in flight added 20 to 45 ms to a small request's median latency; at 1 ms,
8 to 18 ms (tests/security/test_loop_fairness.py)."""


class Translation:
    """Client body -> provider body; provider answer (body or stream) -> client answer.

    `client` and `provider` are dialects (gateway.translate.dialect): converter names."""

    __slots__ = ("body", "client", "provider", "stream", "strict")

    def __init__(
        self, client: str, provider: str, body: dict[str, Any], stream: bool, strict: bool = False
    ) -> None:
        self.client, self.provider, self.body = client, provider, body
        self.stream = stream
        self.strict = strict
        """The route's `translation: strict`: a hint the provider lacks is refused."""

    @property
    def _client_converter(self) -> Converter:
        return CONVERTERS[self.client]

    @property
    def _provider_converter(self) -> ProviderSide:
        return PROVIDER_CONVERTERS[self.provider]

    def upstream_request(self, upstream_model: str) -> tuple[dict[str, Any], frozenset[str]]:
        """The provider's body, and the client's hints it cannot carry (as the client
        spelled them)."""
        try:
            request = self._client_converter.request_to_canonical(self.body)
            # Gemini clients say "stream" in the URL, not the body: the pipeline's word counts.
            request.stream = self.stream
            provider_body = self._provider_converter.request_from_canonical(request, upstream_model)
        except RecursionError:  # str() of a value nested ~1000 deep
            raise too_deep() from None
        if self.strict:
            policy.refuse_hints(request.dropped)
        return provider_body, frozenset(request.dropped)

    def client_body(self, upstream: Any, client_model: str) -> bytes:
        response = self._provider_converter.response_to_canonical(upstream)
        names = self._tool_names()
        if names is not None:
            names.restore_parts(response.parts)
        return orjson.dumps(self._client_converter.response_from_canonical(response, client_model))

    def client_stream(
        self, client_model: str, parser: StreamParser, read_usage: Callable[[Any], None]
    ) -> StreamTranslator:
        """A translator of this answer's stream: upstream bytes in, the client's SSE out;
        `read_usage` is given every upstream event that reports usage."""
        options = self.body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        names = self._tool_names()
        return StreamTranslator(
            self.client, self.provider, client_model, include_usage, names, parser, read_usage
        )

    def _tool_names(self) -> ToolNames | None:
        """The client's own tool names, when the provider got others (translate.tool_names)."""
        if self.client != "openai_responses":
            return None
        names = tool_names(self.body)
        return names if names.changes_any else None


def dump_body(body: dict[str, Any]) -> bytes:
    """An upstream body as JSON; orjson writes 254 levels at most (it reads 1024)."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        raise too_deep() from None


def too_deep() -> BadRequest:
    return BadRequest(
        "The request nests values too deeply for the gateway to pass on. "
        "Send values nested at most 200 levels deep."
    )
