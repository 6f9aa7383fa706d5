"""One adapter per wire protocol (see adapter.py), and how to find the one that applies.

Adding a protocol: a module here with its `ProtocolAdapter`, listed in `ADAPTERS` and in
gateway.vocabulary.Protocol, its converter modules in gateway.translate, and their fixtures.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from gateway.protocols.adapter import ProtocolAdapter
from gateway.protocols.anthropic import ANTHROPIC
from gateway.protocols.bedrock import BEDROCK
from gateway.protocols.gemini import GEMINI
from gateway.protocols.openai import OPENAI
from gateway.vocabulary import Protocol
from policies.models import ProviderType

__all__ = [
    "ADAPTERS",
    "ADAPTER_OF_TYPE",
    "PROTOCOL_OF_TYPE",
    "ProtocolAdapter",
    "caller_protocol",
    "model_list_caller",
]

ADAPTERS: Mapping[Protocol, ProtocolAdapter] = MappingProxyType(
    {a.protocol: a for a in (OPENAI, ANTHROPIC, GEMINI, BEDROCK)}
)
ADAPTER_OF_TYPE: Mapping[ProviderType, ProtocolAdapter] = MappingProxyType(
    {kind: a for a in ADAPTERS.values() for kind in a.provider_types}
)
"""The adapter of the protocol a provider type's upstreams speak."""
PROTOCOL_OF_TYPE: Mapping[ProviderType, Protocol] = MappingProxyType(
    {kind: a.protocol for kind, a in ADAPTER_OF_TYPE.items()}
)
_SNIFFED = (ANTHROPIC, GEMINI)
"""The protocols a caller is recognised by; OpenAI's is what is left."""


def caller_protocol(path: str, headers: Mapping[str, str], args: Mapping[str, Any]) -> Protocol:
    """The protocol a request's caller speaks, from its path, or for the model list (a path
    all protocols share) from how it presents itself; OpenAI's when nothing tells."""
    for adapter in _SNIFFED:
        if adapter.claims_path(path):
            return adapter.protocol
    if path.startswith("/v1/models"):
        return model_list_caller(headers, args)
    return Protocol.OPENAI


def model_list_caller(headers: Mapping[str, str], args: Mapping[str, Any]) -> Protocol:
    """Whose SDK asks `GET /v1/models`: Gemini's when the key came Gemini-style, Anthropic's
    when it sends `anthropic-version`, OpenAI's otherwise."""
    for adapter in (GEMINI, ANTHROPIC):  # a Gemini-style key wins over the header
        if adapter.claims_model_list(headers, args):
            return adapter.protocol
    return Protocol.OPENAI
