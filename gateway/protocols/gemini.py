"""Gemini's protocol: generateContent (streamed and not), countTokens and embeddings, on
Google AI and Vertex AI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from gateway.errors import GatewayError, UnsupportedFeature
from gateway.protocols.adapter import ProtocolAdapter, bill, by_status, segment
from gateway.translate import Converter, gemini_content
from gateway.translate.gemini_content_stream import usage_to_canonical
from gateway.usage.tokens import Usage
from gateway.vocabulary import Op, Protocol
from policies.models import Provider

MODELS = "models/"
"""Gemini's prefix of a model's resource name."""
_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_END = (b'"finishReason"',)
_METHODS = ["generateContent", "countTokens", "embedContent"]


class GeminiAdapter(ProtocolAdapter):
    protocol = Protocol.GEMINI
    provider_types = frozenset({"gemini"})
    converter: ClassVar[Converter] = gemini_content
    usage_key = "usageMetadata"
    can_count_tokens = True

    def claims_path(self, path: str) -> bool:
        return path.startswith("/v1beta/") or ":" in path.rsplit("/", 1)[-1]

    def claims_model_list(self, headers: Mapping[str, str], args: Mapping[str, Any]) -> bool:
        return bool(headers.get("x-goog-api-key") or args.get("key"))  # the key Gemini-style

    def upstream_url(self, provider: Provider, op: Op, model: str, stream: bool) -> str:
        """Google AI (`.../v1beta/models/M:method`) or, for a base URL ending in
        `/publishers/google`, Vertex AI (`.../publishers/google/models/M:method`)."""
        base = provider.base_url.rstrip("/")
        vertex = base.endswith("/publishers/google")
        root = base if vertex else base.removesuffix("/v1beta").removesuffix("/v1") + "/v1beta"
        model = segment(model)
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

    def credential_headers(self, provider: Provider, secret: str) -> dict[str, str]:
        return {"x-goog-api-key": secret}

    def model_in_path(self, provider: Provider) -> bool:
        return True

    def body_model(self, upstream_model: str) -> str:
        return upstream_model if upstream_model.startswith(MODELS) else MODELS + upstream_model

    def error_body(self, err: GatewayError) -> dict[str, Any]:
        status = by_status(_STATUSES, err.status_code)
        return {"error": {"code": err.status_code, "message": err.message, "status": status}}

    def end_marks(self, op: Op) -> tuple[bytes, ...]:
        return _END

    def read_usage(self, data: Any, usage: Usage) -> None:
        meta = data.get("usageMetadata") if isinstance(data, dict) else None
        if isinstance(meta, dict):
            bill(usage, usage_to_canonical(meta))

    def model_entry(self, name: str) -> dict[str, Any]:
        return {
            "name": MODELS + name,
            "baseModelId": name,
            "displayName": name,
            "supportedGenerationMethods": list(_METHODS),
        }

    def model_list(self, names: list[str], args: Mapping[str, Any]) -> dict[str, Any]:
        return {"models": [self.model_entry(n) for n in names]}

    def count_answer(self, tokens: int) -> dict[str, Any]:
        return {"totalTokens": tokens}

    def count_of(self, answer: Any) -> int | None:
        value = answer.get("totalTokens") if isinstance(answer, dict) else None
        return value if isinstance(value, int) else None


GEMINI = GeminiAdapter()
