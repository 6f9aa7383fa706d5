"""What one wire protocol is to the gateway: `ProtocolAdapter`, one subclass per protocol.

An adapter holds everything the gateway knows about its protocol that is not translation
itself: which provider types speak it, how a caller using it is recognised, its upstream URLs
and auth headers, its error shapes and stream error events, how its streams end, where its
answers report usage, and its model-list and count-tokens shapes; it names its converter
modules (gateway.translate) for the rest.

Adapters are module-level singletons, resolved once per request (gateway.protocols.ADAPTERS,
ADAPTER_OF_TYPE); nothing on them is looked up per stream chunk.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

import orjson

from gateway.errors import BadRequest, GatewayError, UnsupportedFeature
from gateway.request.model_names import path_segment_problem
from gateway.translate import ProviderSide, StreamParser
from gateway.translate.canonical import Usage as CanonicalUsage
from gateway.translate.sse import SSEParser
from gateway.usage.tokens import Usage
from gateway.vocabulary import Op, Protocol
from policies.models import Provider, ProviderType

if TYPE_CHECKING:
    from credentials.pool import Credential


class ProtocolAdapter(ABC):
    protocol: ClassVar[Protocol]
    provider_types: ClassVar[frozenset[ProviderType]]
    """The provider types whose upstreams speak this protocol."""
    converter: ClassVar[ProviderSide]
    """The converter module (client <-> canonical <-> provider) of its chat operation."""
    usage_key: ClassVar[str] = "usage"
    """The top-level key of an answer's usage (searched for in large answers)."""
    signs: ClassVar[bool] = False
    """Its requests are signed per attempt (`sign`): Bedrock's SigV4."""
    can_count_tokens: ClassVar[bool] = False
    """Its providers have a count-tokens endpoint."""

    # -- the caller -----------------------------------------------------------------------

    def claims_path(self, path: str) -> bool:
        """A path only this protocol's clients call (for errors raised before routing)."""
        return False

    def claims_model_list(self, headers: Mapping[str, str], args: Mapping[str, Any]) -> bool:
        """A `GET /v1/models` from this protocol's SDK (the path is shared)."""
        return False

    # -- the upstream ---------------------------------------------------------------------

    def upstream_op(self, provider: Provider, op: Op) -> Op:
        """What `provider` is asked for when a client asks for `op` (its URL and dialect):
        a Responses call is a chat call to a protocol without the Responses API."""
        return Op.CHAT if op is Op.RESPONSES else op

    @abstractmethod
    def upstream_url(self, provider: Provider, op: Op, model: str, stream: bool) -> str:
        """Where `op` goes for `provider`; `model` is the upstream model."""

    def auth_headers(self, provider: Provider, secret: str | None) -> dict[str, str]:
        """The request headers of every upstream call, with the credential when there is one."""
        headers = {"content-type": "application/json", **provider.headers}
        if secret:
            headers.update(self.credential_headers(provider, secret))
        return headers

    @abstractmethod
    def credential_headers(self, provider: Provider, secret: str) -> dict[str, str]: ...

    def model_in_path(self, provider: Provider) -> bool:
        """The provider's URL carries the upstream model (it must be one path segment)."""
        return False

    async def sign(
        self,
        provider: Provider,
        credential: Credential,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
    ) -> dict[str, str]:
        """The headers to send, signed over exactly this method, URL, headers and body when
        the protocol signs requests (Bedrock's SigV4); `headers` unchanged otherwise. Called
        per attempt (a signature is dated); raises CredentialUnavailable without a key."""
        return headers

    def body_model(self, upstream_model: str) -> str:
        """The upstream model as this protocol names it inside a request body."""
        return upstream_model

    def finish_body(self, provider: Provider, op: Op, body: dict[str, Any]) -> dict[str, Any]:
        """The upstream body as `provider` wants it, after the model was set (pass-through)
        or the body translated: a hosting's own fields (Claude on Vertex AI names its
        version in the body and its model in the URL). Called for every upstream body, with
        the upstream operation; returns `body` itself when it has nothing to change."""
        return body

    # -- errors ---------------------------------------------------------------------------

    @abstractmethod
    def error_body(self, err: GatewayError) -> dict[str, Any]:
        """`err` as this protocol's error body."""

    def stream_error_event(self, err: GatewayError) -> bytes:
        """An SSE event that this protocol's official SDKs surface as an error."""
        return b"data: " + orjson.dumps(self.error_body(err)) + b"\n\n"

    # -- streams and usage ----------------------------------------------------------------

    def stream_parser(self) -> StreamParser:
        """A parser of this protocol's upstream streams (SSE unless it frames otherwise)."""
        return SSEParser()

    @abstractmethod
    def end_marks(self, op: Op) -> tuple[bytes, ...]:
        """Bytes of the event that closes a complete streamed answer, after its final usage."""

    @abstractmethod
    def read_usage(self, data: Any, usage: Usage) -> None:
        """Update `usage` (what is billed) from one answer body or stream event.

        Stream events carry cumulative figures (or a part of them), so later events
        overwrite. The figures are read by the converter's own reader, the one translation
        shows the client, so what is billed is what a client is told."""

    # -- model lists and token counts -----------------------------------------------------

    @abstractmethod
    def model_entry(self, name: str) -> dict[str, Any]:
        """One route as this protocol's model object."""

    @abstractmethod
    def model_list(self, names: list[str], args: Mapping[str, Any]) -> dict[str, Any]:
        """The routes `names` as this protocol's model list (`args`: the query arguments)."""

    def count_answer(self, tokens: int) -> dict[str, Any]:
        raise UnsupportedFeature(f"{self.protocol.value} has no count-tokens answer.")

    def count_of(self, answer: Any) -> int | None:
        """The token count in an upstream count answer, or None when it has none."""
        return None


def bill(usage: Usage, read: CanonicalUsage, prompt: bool = True, completion: bool = True) -> None:
    """Carry the figures billing counts from the converter's reading into `usage`."""
    if prompt:
        usage.prompt_tokens = read.prompt_tokens
        usage.cached_tokens = read.cached_prompt_tokens
        usage.cache_write_tokens = read.cache_write_tokens
    if completion:
        usage.completion_tokens = read.completion_tokens
        usage.reasoning_tokens = read.reasoning_tokens


def by_status(table: Mapping[int, str], status: int) -> str:
    """A protocol's error word for `status`: its own, else that of 400 or 500."""
    found = table.get(status)
    if found is not None:
        return found
    return table[400] if 400 <= status < 500 else table[500]


def segment(value: str) -> str:
    """`value` as exactly one URL path segment; routable() has refused what this refuses."""
    problem = path_segment_problem(value)
    if problem is not None:
        raise BadRequest(f"The model name cannot be sent upstream: {problem}.", param="model")
    return quote(value, safe="")


def offered(paths: Mapping[Op, str], op: Op, kind: str) -> str:
    """The path of `op` in `paths`, or a 400 saying the provider type does not offer it."""
    try:
        return paths[op]
    except KeyError:
        raise UnsupportedFeature(f"{kind} providers do not offer {op.value}.") from None
