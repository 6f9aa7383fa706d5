"""Claude on Vertex AI: an `anthropic` provider whose base URL is a Vertex AI publisher path.

The model goes in the URL (one path segment), the version in the body, and the credential
as a Bearer token; Anthropic's own API keeps its URLs, headers and bodies.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import BadRequest, UnsupportedFeature
from gateway.protocols.anthropic import ANTHROPIC, VERTEX_ANTHROPIC_VERSION, is_vertex
from gateway.upstream.endpoints import auth_headers, routable, upstream_url
from gateway.vocabulary import Op
from policies.models import Provider, Route
from policies.snapshot import ResolvedRoute, Target

REGIONAL = (
    "https://us-east5-aiplatform.googleapis.com/v1/projects/p1/locations/us-east5"
    "/publishers/anthropic"
)
GLOBAL = "https://aiplatform.googleapis.com/v1/projects/p1/locations/global/publishers/anthropic"
MODEL = "claude-sonnet-4@20250514"


def provider(base_url: str, **extra: object) -> Provider:
    return Provider.model_validate({"type": "anthropic", "base_url": base_url, **extra})


VERTEX = provider(REGIONAL)
DIRECT = provider("https://api.anthropic.com/v1")


# -- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "op", "stream", "url"),
    [
        (REGIONAL, Op.CHAT, False, f"{REGIONAL}/models/{MODEL}:rawPredict"),
        (REGIONAL, Op.CHAT, True, f"{REGIONAL}/models/{MODEL}:streamRawPredict"),
        (REGIONAL + "/", Op.CHAT, False, f"{REGIONAL}/models/{MODEL}:rawPredict"),
        (GLOBAL, Op.CHAT, True, f"{GLOBAL}/models/{MODEL}:streamRawPredict"),
        (REGIONAL, Op.COUNT_TOKENS, False, f"{REGIONAL}/models/count-tokens:rawPredict"),
        (GLOBAL, Op.COUNT_TOKENS, False, f"{GLOBAL}/models/count-tokens:rawPredict"),
    ],
)
def test_vertex_urls(base: str, op: Op, stream: bool, url: str) -> None:
    assert upstream_url(provider(base), op, MODEL, stream) == url


def test_anthropic_api_urls_are_unchanged() -> None:
    assert upstream_url(DIRECT, Op.CHAT, MODEL, True) == "https://api.anthropic.com/v1/messages"
    assert upstream_url(DIRECT, Op.COUNT_TOKENS, MODEL, False) == (
        "https://api.anthropic.com/v1/messages/count_tokens"
    )


@pytest.mark.parametrize(
    ("model", "segment"),
    [
        (MODEL, MODEL),  # '@' as Anthropic's SDK sends it
        ("claude@2025@01", "claude@2025@01"),
        ('a"b<c>[d]', "a%22b%3Cc%3E%5Bd%5D"),
        ("a;b=c&d+e,f'g", "a%3Bb%3Dc%26d%2Be%2Cf%27g"),
    ],
)
def test_a_model_is_one_encoded_path_segment(model: str, segment: str) -> None:
    url = upstream_url(VERTEX, Op.CHAT, model, False)
    assert url == f"{REGIONAL}/models/{segment}:rawPredict"


@pytest.mark.parametrize(
    "model",
    [
        "../../../locations/global/publishers/anthropic/models/x",
        "a/b",
        "a\\b",
        "..",
        "",
        "x?alt=1",
        "x#frag",
        "x%2F..",
        "x%40y",
        "claude-x:streamRawPredict",  # no second method
        "claude x",
        "claude-é",
        "x\r\nHost: evil",
        "x\x00",
    ],
)
def test_a_hostile_model_never_reaches_a_vertex_url(model: str) -> None:
    with pytest.raises(BadRequest):
        upstream_url(VERTEX, Op.CHAT, model, True)


@pytest.mark.parametrize("op", [Op.EMBEDDINGS, Op.COMPLETIONS, Op.RESPONSES])
def test_what_vertex_does_not_offer_is_a_clear_400(op: Op) -> None:
    with pytest.raises(UnsupportedFeature):
        upstream_url(VERTEX, op, MODEL, False)


def test_only_a_publishers_anthropic_base_is_vertex() -> None:
    assert is_vertex(provider(REGIONAL)) and is_vertex(provider(GLOBAL + "/"))
    assert not is_vertex(DIRECT)
    assert not is_vertex(provider(REGIONAL.removesuffix("/anthropic") + "/google"))
    assert ANTHROPIC.model_in_path(VERTEX) and not ANTHROPIC.model_in_path(DIRECT)


def route_to(*targets: tuple[Provider, str]) -> ResolvedRoute:
    kept = tuple(Target(f"p{i}", p, m) for i, (p, m) in enumerate(targets))
    return ResolvedRoute("r", "r", Route(targets=tuple(t.label for t in kept)), kept)


def test_routing_drops_a_vertex_target_whose_model_cannot_be_a_path_segment() -> None:
    kept = routable(route_to((VERTEX, "org/claude"), (DIRECT, "org/claude")))
    assert [t.provider_name for t in kept.targets] == ["p1"]
    with pytest.raises(BadRequest, match="URL path"):
        routable(route_to((VERTEX, "org/claude")))


# -- bodies -------------------------------------------------------------------------------


def test_a_vertex_messages_body_names_its_version_and_not_its_model() -> None:
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 5, "messages": [], "stream": True}
    finished = ANTHROPIC.finish_body(VERTEX, Op.CHAT, body)
    assert finished == {
        "max_tokens": 5,
        "messages": [],
        "stream": True,
        "anthropic_version": VERTEX_ANTHROPIC_VERSION,
    }
    assert body["model"] == MODEL  # the caller's body is left as it was
    assert VERTEX_ANTHROPIC_VERSION == "vertex-2023-10-16"


def test_a_client_sent_version_is_replaced() -> None:
    body = {"max_tokens": 5, "messages": [], "anthropic_version": "vertex-1999-01-01"}
    assert (
        ANTHROPIC.finish_body(VERTEX, Op.CHAT, body)["anthropic_version"]
        == VERTEX_ANTHROPIC_VERSION
    )


def test_a_vertex_count_tokens_body_keeps_its_model() -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    finished = ANTHROPIC.finish_body(VERTEX, Op.COUNT_TOKENS, body)
    assert finished == {**body, "anthropic_version": VERTEX_ANTHROPIC_VERSION}


def test_an_anthropic_api_body_is_untouched() -> None:
    body = {"model": MODEL, "max_tokens": 5, "messages": []}
    assert ANTHROPIC.finish_body(DIRECT, Op.CHAT, body) is body


# -- headers ------------------------------------------------------------------------------


def test_vertex_takes_a_static_token_as_bearer_and_no_version_header() -> None:
    secret = "fake-vertex-access-token"
    headers = auth_headers(VERTEX, secret)
    assert headers["authorization"] == f"Bearer {secret}"
    assert "x-api-key" not in headers and "anthropic-version" not in headers


def test_vertex_with_a_token_credential_gets_no_key_header() -> None:
    # The dispatcher adds `authorization: Bearer <token>` to what this returns.
    headers = auth_headers(VERTEX, None)
    assert headers == {"content-type": "application/json"}


def test_vertex_ignores_an_anthropic_api_version() -> None:
    headers = auth_headers(provider(REGIONAL, api_version="2023-06-01"), None)
    assert "anthropic-version" not in headers


def test_the_anthropic_api_keeps_its_key_and_version_headers() -> None:
    headers = auth_headers(DIRECT, "fake-anthropic-key")
    assert headers["x-api-key"] == "fake-anthropic-key"
    assert headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
