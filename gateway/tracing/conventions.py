"""Span attribute names and values: OpenTelemetry's GenAI semantic conventions, schema 1.44
(the `opentelemetry-semantic-conventions` 0.66b2 release), where the provider attribute is
`gen_ai.provider.name` (it replaced `gen_ai.system` in 1.37); the gateway's own under
`modelgate.*`. Names are spelled out here: the GenAI ones live in the package's private
`_incubating` module, which may move between releases.
"""

from __future__ import annotations

import functools

from policies.models import ProviderType

SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
ERROR_TYPE = "error.type"
HTTP_ROUTE = "http.route"
HTTP_STATUS = "http.response.status_code"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

KEY_ID = "modelgate.key_id"
TEAM = "modelgate.team"
ROUTE = "modelgate.route"
"""The route of routes.yaml the requested model matched."""
POLICY_COMMIT = "modelgate.policy.commit"
COST_USD = "modelgate.cost_usd"
REQUEST_ID = "modelgate.request_id"
STREAM = "modelgate.stream"
PROVIDER_CONFIG = "modelgate.provider"
"""The provider's name in providers.yaml (gen_ai.provider.name is its kind)."""
TARGET = "modelgate.target"
ATTEMPT = "modelgate.attempt"

_PROVIDER_NAMES: dict[ProviderType, str] = {
    "openai": "openai",
    "openai-compatible": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "azure-openai": "azure.ai.openai",
    "bedrock": "aws.bedrock",
}


def provider_name(kind: ProviderType) -> str:
    """The well-known `gen_ai.provider.name` of a provider type (OpenAI-compatible servers
    speak OpenAI's API; the conventions have no better name for them)."""
    return _PROVIDER_NAMES.get(kind, kind)


_GEMINI_METHODS = {
    "generateContent": "generate_content",
    "streamGenerateContent": "generate_content",
    "embedContent": "embeddings",
    "batchEmbedContents": "embeddings",
    "countTokens": "count_tokens",
}
_PATH_ENDINGS = (
    ("/chat/completions", "chat"),
    ("/messages", "chat"),
    ("/responses", "chat"),
    ("/completions", "text_completion"),
    ("/embeddings", "embeddings"),
    ("/count_tokens", "count_tokens"),
)


@functools.lru_cache(maxsize=512)
def operation_name(path: str) -> str:
    """`gen_ai.operation.name` of a request path: a well-known value where the conventions
    have one, else the path's last segment (`moderations`, `generations`, `files`...)."""
    if ":" in path:  # Gemini: /v1beta/models/NAME:METHOD
        method = path.rsplit(":", 1)[1]
        return _GEMINI_METHODS.get(method, method)
    for ending, name in _PATH_ENDINGS:
        if path.endswith(ending):
            return name
    return path.rstrip("/").rsplit("/", 1)[-1] or "unknown"
