"""The protocol adapters: which provider types speak which protocol, how a caller is
recognised, and each protocol's error shapes (as they were before the adapters held them)."""

from __future__ import annotations

from typing import get_args

import orjson
import pytest

from gateway.errors import GatewayError, QuotaExhausted, UpstreamClientError
from gateway.protocols import ADAPTER_OF_TYPE, ADAPTERS, PROTOCOL_OF_TYPE, caller_protocol
from gateway.protocols.gemini import GEMINI
from gateway.translate import PROVIDER_CONVERTERS
from gateway.vocabulary import Protocol
from policies.models import ProviderType


def test_every_provider_type_has_exactly_one_protocol() -> None:
    kinds = [kind for adapter in ADAPTERS.values() for kind in adapter.provider_types]
    assert sorted(kinds) == sorted(get_args(ProviderType))
    assert set(ADAPTERS) == set(Protocol)
    assert all(ADAPTERS[p].protocol is p for p in Protocol)
    assert ADAPTER_OF_TYPE["bedrock"].protocol is Protocol.BEDROCK


@pytest.mark.parametrize(
    ("kind", "protocol"),
    [
        ("openai", Protocol.OPENAI),
        ("azure-openai", Protocol.OPENAI),
        ("openai-compatible", Protocol.OPENAI),
        ("anthropic", Protocol.ANTHROPIC),
        ("gemini", Protocol.GEMINI),
    ],
)
def test_provider_type_protocol(kind: ProviderType, protocol: Protocol) -> None:
    assert PROTOCOL_OF_TYPE[kind] is protocol


def test_each_adapter_names_its_converter() -> None:
    for protocol, adapter in ADAPTERS.items():
        assert adapter.converter is PROVIDER_CONVERTERS[protocol.value]


@pytest.mark.parametrize(
    ("path", "headers", "args", "protocol"),
    [
        ("/v1/messages", {}, {}, Protocol.ANTHROPIC),
        ("/v1/messages/count_tokens", {"x-goog-api-key": "k"}, {}, Protocol.ANTHROPIC),
        ("/v1beta/models/m:generateContent", {}, {}, Protocol.GEMINI),
        ("/v1/models/m:countTokens", {}, {}, Protocol.GEMINI),
        ("/v1/models", {"x-goog-api-key": "k", "anthropic-version": "x"}, {}, Protocol.GEMINI),
        ("/v1/models", {}, {"key": "k"}, Protocol.GEMINI),
        ("/v1/models/m", {"anthropic-version": "2023-06-01"}, {}, Protocol.ANTHROPIC),
        ("/v1/models", {}, {}, Protocol.OPENAI),
        ("/v1/chat/completions", {"anthropic-version": "x"}, {}, Protocol.OPENAI),
    ],
)
def test_caller_protocol(
    path: str, headers: dict[str, str], args: dict[str, str], protocol: Protocol
) -> None:
    assert caller_protocol(path, headers, args) is protocol


# status -> (OpenAI error type, Anthropic error type, Gemini status): the shapes every
# client got before each adapter held its own column
SHAPES = {
    400: ("invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
    401: ("invalid_request_error", "authentication_error", "UNAUTHENTICATED"),
    403: ("permission_error", "permission_error", "PERMISSION_DENIED"),
    404: ("invalid_request_error", "not_found_error", "NOT_FOUND"),
    408: ("timeout_error", "timeout_error", "DEADLINE_EXCEEDED"),
    409: ("invalid_request_error", "invalid_request_error", "ABORTED"),
    413: ("invalid_request_error", "request_too_large", "INVALID_ARGUMENT"),
    418: ("invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
    422: ("invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
    429: ("rate_limit_error", "rate_limit_error", "RESOURCE_EXHAUSTED"),
    500: ("server_error", "api_error", "INTERNAL"),
    502: ("upstream_error", "api_error", "UNAVAILABLE"),
    503: ("service_unavailable", "overloaded_error", "UNAVAILABLE"),
    504: ("timeout_error", "timeout_error", "DEADLINE_EXCEEDED"),
    599: ("server_error", "api_error", "INTERNAL"),
}


@pytest.mark.parametrize("status", sorted(SHAPES))
def test_error_shapes(status: int) -> None:
    err = UpstreamClientError(status, "Do this next.")
    openai_type, anthropic_type, gemini_status = SHAPES[status]
    assert err.body(Protocol.OPENAI) == {
        "error": {
            "message": "Do this next.",
            "type": openai_type,
            "param": None,
            "code": "upstream_rejected",
        }
    }
    assert err.body(Protocol.ANTHROPIC) == {
        "type": "error",
        "error": {"type": anthropic_type, "message": "Do this next."},
    }
    assert err.body(Protocol.GEMINI) == {
        "error": {"code": status, "message": "Do this next.", "status": gemini_status}
    }


def test_an_openai_type_beyond_the_status_is_kept() -> None:
    err = QuotaExhausted("Wait for tomorrow.")
    assert err.body(Protocol.OPENAI)["error"]["type"] == "insufficient_quota"


def test_stream_error_events() -> None:
    err = GatewayError("Try again.")
    for protocol in Protocol:
        body = orjson.dumps(err.body(protocol))
        event = ADAPTERS[protocol].stream_error_event(err)
        prefix = b"event: error\n" if protocol is Protocol.ANTHROPIC else b""
        assert event == prefix + b"data: " + body + b"\n\n"


def test_gemini_names_a_model_once_with_its_prefix() -> None:
    assert GEMINI.body_model("gemini-2.5") == "models/gemini-2.5"
    assert GEMINI.body_model("models/gemini-2.5") == "models/gemini-2.5"
    assert GEMINI.model_entry("r")["name"] == "models/r"
