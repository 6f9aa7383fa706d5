"""Upstream URLs and auth headers per provider type, Vertex AI included."""

from __future__ import annotations

import pytest

from gateway.errors import UnsupportedFeature
from gateway.upstream.endpoints import auth_headers, upstream_url
from gateway.vocabulary import Op
from policies.models import Provider

VERTEX = "https://us-central1-aiplatform.googleapis.com/v1/projects/p1/locations/us-central1"


def provider(kind: str, base_url: str, **extra: object) -> Provider:
    return Provider.model_validate({"type": kind, "base_url": base_url, **extra})


@pytest.mark.parametrize(
    ("kind", "base", "op", "stream", "url"),
    [
        (
            "openai",
            "https://api.openai.com/v1",
            Op.CHAT,
            False,
            "https://api.openai.com/v1/chat/completions",
        ),
        (
            "openai-compatible",
            "http://127.0.0.1:11434/v1/",
            Op.EMBEDDINGS,
            False,
            "http://127.0.0.1:11434/v1/embeddings",
        ),
        (
            "azure-openai",
            "https://r.openai.azure.com",
            Op.CHAT,
            True,
            "https://r.openai.azure.com/openai/deployments/m/chat/completions?api-version=2024-10-21",
        ),
        (
            "anthropic",
            "https://api.anthropic.com/v1",
            Op.CHAT,
            True,
            "https://api.anthropic.com/v1/messages",
        ),
        (
            "gemini",
            "https://generativelanguage.googleapis.com",
            Op.CHAT,
            True,
            "https://generativelanguage.googleapis.com/v1beta/models/m:streamGenerateContent?alt=sse",
        ),
        (
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta",
            Op.EMBEDDINGS,
            False,
            "https://generativelanguage.googleapis.com/v1beta/models/m:batchEmbedContents",
        ),
        (
            "gemini",
            VERTEX + "/publishers/google",
            Op.CHAT,
            False,
            VERTEX + "/publishers/google/models/m:generateContent",
        ),
        (
            "gemini",
            VERTEX + "/publishers/google/",
            Op.CHAT,
            True,
            VERTEX + "/publishers/google/models/m:streamGenerateContent?alt=sse",
        ),
        (
            "gemini",
            VERTEX + "/publishers/google",
            Op.COUNT_TOKENS,
            False,
            VERTEX + "/publishers/google/models/m:countTokens",
        ),
    ],
)
def test_upstream_url(kind: str, base: str, op: Op, stream: bool, url: str) -> None:
    assert upstream_url(provider(kind, base), op, "m", stream) == url


@pytest.mark.parametrize(
    ("kind", "base", "op"),
    [
        ("anthropic", "https://api.anthropic.com", Op.EMBEDDINGS),
        ("gemini", VERTEX + "/publishers/google", Op.EMBEDDINGS),
        ("gemini", "https://generativelanguage.googleapis.com", Op.COMPLETIONS),
    ],
)
def test_what_a_provider_cannot_do_is_a_clear_400(kind: str, base: str, op: Op) -> None:
    with pytest.raises(UnsupportedFeature):
        upstream_url(provider(kind, base), op, "m", False)


def test_each_provider_type_carries_its_credential_its_own_way() -> None:
    secret = "test-credential"
    assert auth_headers(provider("openai", "https://x/v1"), secret)["authorization"] == (
        f"Bearer {secret}"
    )
    assert auth_headers(provider("azure-openai", "https://x"), secret)["api-key"] == secret
    anthropic = auth_headers(provider("anthropic", "https://x"), secret)
    assert anthropic["x-api-key"] == secret and anthropic["anthropic-version"] == "2023-06-01"
    assert auth_headers(provider("gemini", "https://x"), secret)["x-goog-api-key"] == secret
    assert "authorization" not in auth_headers(provider("openai-compatible", "http://x/v1"), None)
