"""OpenAI's protocol: chat completions, completions, embeddings and the Responses API, as
spoken by OpenAI itself, Azure OpenAI and OpenAI-compatible servers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from gateway.errors import GatewayError
from gateway.protocols.adapter import ProtocolAdapter, bill, by_status, offered, segment
from gateway.translate import Converter, openai_chat, openai_responses
from gateway.translate.openai_chat_stream import usage_to_canonical as chat_usage
from gateway.translate.openai_responses_stream import usage_to_canonical as responses_usage
from gateway.usage.tokens import Usage
from gateway.vocabulary import Op, Protocol
from policies.models import Provider, ProviderType

DEFAULT_AZURE_API_VERSION = "2024-10-21"

RESPONSES_UPSTREAMS: frozenset[ProviderType] = frozenset({"openai"})
"""Provider types a Responses client's call reaches in the Responses API without `api:
responses`. Other OpenAI-family types get chat completions: an openai-compatible server
seldom offers /responses, and Azure's lives outside the deployment paths used for chat."""
_CHAT_OPS = (Op.CHAT, Op.RESPONSES)

_PATHS = {
    Op.CHAT: "/chat/completions",
    Op.COMPLETIONS: "/completions",
    Op.EMBEDDINGS: "/embeddings",
    Op.RESPONSES: "/responses",
    Op.MODERATIONS: "/moderations",
    Op.IMAGES: "/images/generations",
    Op.IMAGE_EDITS: "/images/edits",
    Op.AUDIO_SPEECH: "/audio/speech",
    Op.AUDIO_TRANSCRIPTIONS: "/audio/transcriptions",
    Op.AUDIO_TRANSLATIONS: "/audio/translations",
    Op.RERANK: "/rerank",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    408: "timeout_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}
_CHAT_END = (b"data: [DONE]",)
_RESPONSES_END = (b'response.completed"', b'response.incomplete"', b'response.failed"')
"""The Responses API's last events (no `[DONE]` follows them); the quote right after the
name keeps an escaped mention inside generated text (`...completed\\"`) from matching."""


class OpenAIAdapter(ProtocolAdapter):
    protocol = Protocol.OPENAI
    provider_types = frozenset({"openai", "openai-compatible", "azure-openai"})
    converter: ClassVar[Converter] = openai_chat
    responses_converter: ClassVar[Converter] = openai_responses
    """The Responses API's converter (a client protocol of its own to translation)."""

    def upstream_op(self, provider: Provider, op: Op) -> Op:
        """Chat and Responses calls go to the API the provider serves its models through:
        `api: responses` (models served only there), else chat completions, except that a
        Responses call to OpenAI itself stays one."""
        if op not in _CHAT_OPS:
            return op
        if provider.api == "responses" or (
            op is Op.RESPONSES and provider.type in RESPONSES_UPSTREAMS
        ):
            return Op.RESPONSES
        return Op.CHAT

    def upstream_url(self, provider: Provider, op: Op, model: str, stream: bool) -> str:
        base = provider.base_url.rstrip("/")
        path = offered(_PATHS, op, provider.type)
        if provider.type != "azure-openai":
            return base + path
        if op is Op.RESPONSES:
            # Azure's Responses API is not per deployment: its v1 path, the deployment named
            # as the body's model, and no api-version.
            return f"{base.removesuffix('/openai/v1').removesuffix('/openai')}/openai/v1/responses"
        version = quote(provider.api_version or DEFAULT_AZURE_API_VERSION, safe="")
        return f"{base}/openai/deployments/{segment(model)}{path}?api-version={version}"

    def credential_headers(self, provider: Provider, secret: str) -> dict[str, str]:
        if provider.type == "azure-openai":
            return {"api-key": secret}
        return {"authorization": f"Bearer {secret}"}

    def model_in_path(self, provider: Provider) -> bool:
        return provider.type == "azure-openai"  # the deployment

    def error_body(self, err: GatewayError) -> dict[str, Any]:
        return {
            "error": {
                "message": err.message,
                "type": err.openai_type or by_status(_ERROR_TYPES, err.status_code),
                "param": err.param,
                "code": err.code,
            }
        }

    def end_marks(self, op: Op) -> tuple[bytes, ...]:
        return _RESPONSES_END if op is Op.RESPONSES else _CHAT_END

    def read_usage(self, data: Any, usage: Usage) -> None:
        if not isinstance(data, dict):
            return
        raw = data.get("usage")
        if data.get("type") == "response.completed":  # Responses API stream
            raw = (data.get("response") or {}).get("usage")
        if isinstance(raw, dict):
            bill(usage, responses_usage(raw) if "input_tokens" in raw else chat_usage(raw))

    def model_entry(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 0, "owned_by": "modelgate"}

    def model_list(self, names: list[str], args: Mapping[str, Any]) -> dict[str, Any]:
        return {"object": "list", "data": [self.model_entry(n) for n in names]}


OPENAI = OpenAIAdapter()
