"""Where and how to call each provider type: URL, auth headers, protocol family."""

from __future__ import annotations

from enum import StrEnum

from gateway.errors import Protocol, UnsupportedFeature
from policies.models import Provider, ProviderType

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_AZURE_API_VERSION = "2024-10-21"


class Op(StrEnum):
    """What the client asked for, independent of protocol."""

    CHAT = "chat"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    RESPONSES = "responses"
    COUNT_TOKENS = "count_tokens"


FAMILY: dict[ProviderType, Protocol] = {
    "openai": Protocol.OPENAI,
    "openai-compatible": Protocol.OPENAI,
    "azure-openai": Protocol.OPENAI,
    "anthropic": Protocol.ANTHROPIC,
    "gemini": Protocol.GEMINI,
}

_OPENAI_PATHS = {
    Op.CHAT: "/chat/completions",
    Op.COMPLETIONS: "/completions",
    Op.EMBEDDINGS: "/embeddings",
    Op.RESPONSES: "/responses",
}


def upstream_url(provider: Provider, op: Op, model: str, stream: bool) -> str:
    base = provider.base_url.rstrip("/")
    kind = provider.type
    if kind in ("openai", "openai-compatible"):
        return base + _path(_OPENAI_PATHS, op, kind)
    if kind == "azure-openai":
        version = provider.api_version or DEFAULT_AZURE_API_VERSION
        path = _path(_OPENAI_PATHS, op, kind)
        return f"{base}/openai/deployments/{model}{path}?api-version={version}"
    if kind == "anthropic":
        base = base.removesuffix("/v1")
        if op is Op.COUNT_TOKENS:
            return f"{base}/v1/messages/count_tokens"
        if op is not Op.CHAT:
            raise UnsupportedFeature(f"Anthropic providers do not offer {op.value}.")
        return f"{base}/v1/messages"
    return _gemini_url(base, op, model, stream)


def _gemini_url(base: str, op: Op, model: str, stream: bool) -> str:
    """Google AI (`.../v1beta/models/M:method`) or, for a base URL ending in
    `/publishers/google`, Vertex AI (`.../publishers/google/models/M:method`)."""
    vertex = base.endswith("/publishers/google")
    root = base if vertex else base.removesuffix("/v1beta").removesuffix("/v1") + "/v1beta"
    if op is Op.EMBEDDINGS:
        if vertex:
            raise UnsupportedFeature(
                "Vertex AI embeddings use its :predict method, which ModelGate does not speak."
            )
        return f"{root}/models/{model}:batchEmbedContents"
    if op is Op.COUNT_TOKENS:
        return f"{root}/models/{model}:countTokens"
    if op is not Op.CHAT:
        raise UnsupportedFeature(f"Gemini providers do not offer {op.value}.")
    if stream:
        return f"{root}/models/{model}:streamGenerateContent?alt=sse"
    return f"{root}/models/{model}:generateContent"


def _path(paths: dict[Op, str], op: Op, kind: str) -> str:
    try:
        return paths[op]
    except KeyError:
        raise UnsupportedFeature(f"{kind} providers do not offer {op.value}.") from None


def auth_headers(provider: Provider, secret: str | None) -> dict[str, str]:
    headers = {"content-type": "application/json", **provider.headers}
    kind = provider.type
    if kind == "anthropic":
        headers["anthropic-version"] = provider.api_version or DEFAULT_ANTHROPIC_VERSION
        if secret:
            headers["x-api-key"] = secret
    elif kind == "gemini":
        if secret:
            headers["x-goog-api-key"] = secret
    elif kind == "azure-openai":
        if secret:
            headers["api-key"] = secret
    elif secret:
        headers["authorization"] = f"Bearer {secret}"
    return headers
