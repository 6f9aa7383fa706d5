"""Amazon Bedrock's Converse API (Converse and ConverseStream), signed with SigV4.

Bedrock is a provider protocol only: no client speaks it to the gateway. Its streams are AWS
event streams, binary frames (gateway/upstream/aws_event_stream.py), not SSE.

The model goes in the URL path: a model id (anthropic.claude-sonnet-4-...-v1:0), an inference
profile id (us.anthropic....) or an ARN (arn:aws:bedrock:...:inference-profile/...), each
percent-encoded whole as one segment, so its ':' and '/' cannot walk the path. That is why
`model_in_path` is False here: the gateway's path-segment grammar refuses ':' and '/', which
every Bedrock model id has; the general model-name grammar applies instead (no '%', '?',
'#', '.' or '..' parts), and the encoding does the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from gateway.errors import BadRequest, GatewayError, UnsupportedFeature
from gateway.protocols.adapter import ProtocolAdapter, bill
from gateway.request.model_names import model_name_problem
from gateway.translate import ProviderSide, StreamParser, bedrock_converse
from gateway.translate.bedrock_converse_stream import usage_to_canonical
from gateway.usage.tokens import Usage
from gateway.vocabulary import Op, Protocol
from policies.models import Provider

if TYPE_CHECKING:
    from credentials.pool import Credential

EVENT_STREAM = "application/vnd.amazon.eventstream"
"""The content type of ConverseStream's answer."""
_END = (b"\x0b:event-type\x07\x00\x08metadata",)
"""The `:event-type: metadata` header as framed (name length, name, type 7 = string, value
length, value): the stream's last event, after messageStop, and the one with the usage.
Framed bytes cannot occur inside a JSON payload (it escapes control characters)."""


class BedrockAdapter(ProtocolAdapter):
    """Bedrock's Converse API. botocore (SigV4, the event stream) is imported on the first
    Bedrock call: it adds about 80 ms to the start of every gateway and CLI command that
    never calls Bedrock."""

    protocol = Protocol.BEDROCK
    provider_types = frozenset({"bedrock"})
    converter: ClassVar[ProviderSide] = bedrock_converse  # a provider-only protocol
    signs = True

    def upstream_url(self, provider: Provider, op: Op, model: str, stream: bool) -> str:
        """`{base_url}/model/{model}/converse` (or `/converse-stream`); base_url is the
        runtime endpoint, https://bedrock-runtime.{region}.amazonaws.com on AWS."""
        if op is not Op.CHAT:
            raise UnsupportedFeature(f"Bedrock providers do not offer {op.value}.")
        action = "converse-stream" if stream else "converse"
        return f"{provider.base_url.rstrip('/')}/model/{model_segment(model)}/{action}"

    def credential_headers(self, provider: Provider, secret: str) -> dict[str, str]:
        return {}  # a bedrock credential signs (sign); it is never a header of its own

    async def sign(
        self,
        provider: Provider,
        credential: Credential,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
    ) -> dict[str, str]:
        if provider.region is None:  # the policy refuses it; a clear error all the same
            raise BadRequest("The bedrock provider has no region to sign its requests for.")
        from gateway.upstream.aws_signing import sign_headers, signing_key  # botocore: see below

        key = await signing_key(credential.aws)
        return sign_headers(key, provider.region, method, url, headers, body)

    def error_body(self, err: GatewayError) -> dict[str, Any]:
        return {"message": err.message}

    def stream_parser(self) -> StreamParser:
        from gateway.upstream.aws_event_stream import EventStreamParser  # botocore: see below

        return EventStreamParser()

    def end_marks(self, op: Op) -> tuple[bytes, ...]:
        return _END

    def read_usage(self, data: Any, usage: Usage) -> None:
        # A Converse answer and ConverseStream's metadata event both carry `usage`.
        raw = data.get("usage") if isinstance(data, dict) else None
        if isinstance(raw, dict):
            bill(usage, usage_to_canonical(raw))

    def model_entry(self, name: str) -> dict[str, Any]:
        return {"modelId": name, "modelName": name}

    def model_list(self, names: list[str], args: Mapping[str, Any]) -> dict[str, Any]:
        return {"modelSummaries": [self.model_entry(n) for n in names]}


def model_segment(model: str) -> str:
    """`model` percent-encoded whole as one URL path segment (':' and '/' included)."""
    problem = model_name_problem(model)
    if problem is not None:
        raise BadRequest(f"The model name cannot be sent upstream: {problem}.", param="model")
    return quote(model, safe="")


BEDROCK = BedrockAdapter()
