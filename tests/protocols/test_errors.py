"""Errors come back in the client's protocol with the right status: each SDK raises its class."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from google.genai import errors as genai_errors

from tests.protocols import sdk_calls
from tests.protocols.conftest import CLIENTS, ERROR_PROVIDER, PROVIDERS, Matrix, route
from tests.support.fake_upstream import Fault
from tests.support.gateway_process import FAKE_UPSTREAM_KEY

UPSTREAM_MESSAGE = "messages.0.content: too long for this model"
# The upstream's 400, each in its provider's own error shape.
UPSTREAM_400 = {
    "openai": {"error": {"message": UPSTREAM_MESSAGE, "type": "invalid_request_error"}},
    "anthropic": {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": UPSTREAM_MESSAGE},
    },
    "gemini": {"error": {"code": 400, "message": UPSTREAM_MESSAGE, "status": "INVALID_ARGUMENT"}},
}
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    502: "api_error",
    503: "overloaded_error",
}
GEMINI_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
}
CLIENT_ERRORS: dict[int, dict[str, type[Exception]]] = {
    400: {"openai": openai.BadRequestError, "anthropic": anthropic.BadRequestError,
          "gemini": genai_errors.ClientError},
    401: {"openai": openai.AuthenticationError, "anthropic": anthropic.AuthenticationError,
          "gemini": genai_errors.ClientError},
    404: {"openai": openai.NotFoundError, "anthropic": anthropic.NotFoundError,
          "gemini": genai_errors.ClientError},
    502: {"openai": openai.InternalServerError, "anthropic": anthropic.InternalServerError,
          "gemini": genai_errors.ServerError},
    503: {"openai": openai.InternalServerError, "anthropic": anthropic.ServiceUnavailableError,
          "gemini": genai_errors.ServerError},
}  # fmt: skip


def _call(m: Matrix, client: str, model: str, stream: bool) -> None:
    if stream:
        sdk_calls.stream(m, client, model)
    else:
        sdk_calls.text(m, client, model)


def _raised(m: Matrix, client: str, model: str, status: int, stream: bool = False) -> Any:
    """The exception the SDK raised, checked for class, status and the protocol's shape."""
    with pytest.raises(CLIENT_ERRORS[status][client]) as caught:
        _call(m, client, model, stream)
    exc: Any = caught.value
    response = exc.response
    assert response.status_code == status
    assert response.headers["x-request-id"] and response.headers["x-modelgate-policy"]
    body = response.json()
    if client == "openai":
        assert set(body["error"]) >= {"message", "type", "code"}
        message = body["error"]["message"]
    elif client == "anthropic":
        assert body["type"] == "error"
        assert body["error"]["type"] == ANTHROPIC_TYPES[status]
        message = body["error"]["message"]
    else:
        assert exc.code == status
        assert body["error"]["code"] == status
        assert body["error"]["status"] == GEMINI_STATUSES[status]
        message = body["error"]["message"]
    assert FAKE_UPSTREAM_KEY not in response.text
    assert m.upstream.url not in response.text and "127.0.0.1" not in response.text
    exc.gateway_message = message
    return exc


PAIRS = [(c, p, s) for c in CLIENTS for p in PROVIDERS for s in (False, True)]
IDS = [f"{c}-client-to-{p}{'-stream' if s else ''}" for c, p, s in PAIRS]


@pytest.mark.parametrize(("client", "provider", "stream"), PAIRS, ids=IDS)
def test_upstream_400_is_passed_back_in_the_clients_shape(
    m: Matrix, client: str, provider: str, stream: bool
) -> None:
    m.upstream.fail_next(Fault(400, body=UPSTREAM_400[provider]))
    exc = _raised(m, client, route(provider), 400, stream)
    assert exc.gateway_message == UPSTREAM_MESSAGE
    assert len(m.upstream.requests) == 1, "a client error is never retried"


@pytest.mark.parametrize("client", CLIENTS)
def test_upstream_401_on_our_credential_is_a_502(m: Matrix, client: str) -> None:
    m.upstream.fail_next(Fault(401, body={"error": {"message": "invalid x-api-key"}}))
    exc = _raised(m, client, f"e401-{client}", 502)
    assert "invalid x-api-key" not in exc.gateway_message, "the upstream's words stay inside"
    assert f"e401-{client}" in exc.gateway_message


@pytest.mark.parametrize("client", CLIENTS)
def test_upstream_429_is_a_503_with_retry_after(m: Matrix, client: str) -> None:
    m.upstream.fail_next(Fault(429, headers={"retry-after": "30"}))
    exc = _raised(m, client, f"e429-{client}", 503)
    assert 25 <= int(exc.response.headers["retry-after"]) <= 30
    # The credential is cooling down: the next call does not reach the upstream.
    _raised(m, client, f"e429-{client}", 503)
    assert len(m.upstream.requests) == 1
    assert m.upstream.requests[0].path.endswith(
        {"openai": "/chat/completions", "anthropic": "/v1/messages", "gemini": ":generateContent"}[
            ERROR_PROVIDER[client]
        ]
    )


@pytest.mark.parametrize("client", CLIENTS)
def test_unknown_model_is_a_404_in_the_clients_shape(m: Matrix, client: str) -> None:
    exc = _raised(m, client, "no-such-model", 404)
    assert "no-such-model" in exc.gateway_message
    assert m.upstream.requests == []


@pytest.mark.parametrize("client", CLIENTS)
def test_bad_key_is_a_401_in_the_clients_shape(m: Matrix, client: str) -> None:
    m.key, good = m.key + "x", m.key
    try:
        _raised(m, client, route("openai"), 401)
    finally:
        m.key = good
    assert m.upstream.requests == []
