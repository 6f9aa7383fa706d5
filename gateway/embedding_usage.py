"""Embeddings are served like any call, but an answer without usage counts an estimate.

Gemini's embedContent and batchEmbedContents answers report no tokens (nor do some
OpenAI-compatible servers), so without an estimate embedding traffic would cost nothing
against tpm and token quotas. The estimate is the one an OpenAI client already sees in the
usage of a Gemini embedding answer (translate.embeddings.estimate_tokens), so what a key
is charged matches what it was told.
"""

from __future__ import annotations

from typing import Any

from sanic import HTTPResponse, Request

from gateway.errors import GatewayError, Protocol
from gateway.exchange import Exchange
from gateway.serve import serve_call
from gateway.state import AppState
from gateway.translate.embeddings import estimate_tokens, gemini_request_inputs, openai_inputs
from gateway.upstream.endpoints import Op
from policies.snapshot import ResolvedRoute


async def serve_embeddings(
    request: Request,
    state: AppState,
    ex: Exchange,
    op: Op,
    body: dict[str, Any],
    route: ResolvedRoute,
    stream: bool,
    headers: dict[str, str],
) -> HTTPResponse | None:
    """serve_call, then the estimate when the upstream's answer carried no usage."""
    response = await serve_call(request, state, ex, op, body, route, stream, headers)
    # The pipeline settles after this returns, so the estimate is what tpm and quotas count.
    if ex.usage.total == 0 and ex.status < 400:
        ex.usage.prompt_tokens = input_tokens_estimate(ex.protocol, body, request.body)
    return response


def input_tokens_estimate(protocol: Protocol, body: dict[str, Any], raw: bytes) -> int:
    """The estimated input tokens of an embeddings request (OpenAI or Gemini shape)."""
    try:
        texts = openai_inputs(body) if protocol is Protocol.OPENAI else gemini_request_inputs(body)
    except GatewayError:
        # Token arrays or non-text parts: the size estimate the pipeline reserved with.
        return len(raw) // 4
    return estimate_tokens(texts)
