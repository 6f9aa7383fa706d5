"""Where and how to call each provider type: URL, auth headers, protocol family.

Every value put into an upstream URL is percent-encoded as one path segment (or query value),
and a model that must be a path segment is checked first (see gateway.model_names): a
client's name must never walk the upstream's path.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from urllib.parse import quote

from gateway.errors import BadRequest, Protocol, UnsupportedFeature
from gateway.model_names import model_name_problem, path_segment_problem
from policies.models import Provider, ProviderType
from policies.snapshot import ResolvedRoute

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

MODEL_IN_PATH: frozenset[ProviderType] = frozenset({"gemini", "azure-openai"})
"""Provider types whose URL path carries the upstream model (a Gemini model id, an Azure
deployment); the others take it in the body."""

RESPONSES_UPSTREAMS: frozenset[ProviderType] = frozenset({"openai"})
"""Provider types asked for Responses in the Responses API. Other OpenAI-family types get
chat completions: an openai-compatible server seldom offers /responses, and Azure's lives
outside the deployment paths used here (`/openai/v1/responses`, model in the body) and
needs a newer api-version than the default."""


def upstream_op(op: Op, kind: ProviderType) -> Op:
    """What the provider is asked for: the client's operation, except Responses to a type
    without them, which the translation turns into the provider's chat call (its body and
    so its URL)."""
    if op is Op.RESPONSES and kind not in RESPONSES_UPSTREAMS:
        return Op.CHAT
    return op


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
        version = quote(provider.api_version or DEFAULT_AZURE_API_VERSION, safe="")
        path = _path(_OPENAI_PATHS, op, kind)
        return f"{base}/openai/deployments/{_segment(model)}{path}?api-version={version}"
    if kind == "anthropic":
        base = base.removesuffix("/v1")
        if op is Op.COUNT_TOKENS:
            return f"{base}/v1/messages/count_tokens"
        if op is not Op.CHAT:
            raise UnsupportedFeature(f"Anthropic providers do not offer {op.value}.")
        return f"{base}/v1/messages"
    return _gemini_url(base, op, _segment(model), stream)


def _segment(value: str) -> str:
    """`value` as exactly one path segment; routable() has refused what this refuses."""
    problem = path_segment_problem(value)
    if problem is not None:
        raise BadRequest(f"The model name cannot be sent upstream: {problem}.", param="model")
    return quote(value, safe="")


def routable(route: ResolvedRoute) -> ResolvedRoute:
    """`route` with only the targets whose upstream model is a valid name, and a valid path
    segment where the provider puts it in the URL; a 400 when no target is left."""
    problems = [_target_problem(t.provider.type, t.upstream_model) for t in route.targets]
    if all(p is None for p in problems):
        return route
    kept = tuple(t for t, p in zip(route.targets, problems, strict=True) if p is None)
    if not kept:
        problem = next(p for p in problems if p is not None)
        raise BadRequest(
            f"The model '{route.model}' maps to an upstream model name that cannot be sent: "
            f"{problem}. Use a model name from GET /v1/models.",
            param="model",
        )
    return dataclasses.replace(route, targets=kept)


def _target_problem(kind: ProviderType, upstream_model: str) -> str | None:
    if kind in MODEL_IN_PATH:
        return path_segment_problem(upstream_model)
    return model_name_problem(upstream_model)


def _gemini_url(base: str, op: Op, model: str, stream: bool) -> str:
    """Google AI (`.../v1beta/models/M:method`) or, for a base URL ending in
    `/publishers/google`, Vertex AI (`.../publishers/google/models/M:method`); `model` is
    already one encoded segment."""
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
