"""What an answer that reported no usage counts: an estimate, never nothing.

Gemini's embedContent and batchEmbedContents answers report no tokens, nor do some
OpenAI-compatible servers for any answer; without an estimate that traffic would cost
nothing against tpm and token quotas. Embeddings count the estimate an OpenAI client already
sees in the usage of a Gemini embedding answer (translate.embeddings.estimate_tokens), so
what a key is charged matches what it was told; other answers count the request's size
estimate (the one admission reserved) and the answer's size.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError, Protocol
from gateway.translate.embeddings import estimate_tokens, gemini_request_inputs, openai_inputs
from gateway.usage.tokens import Usage
from gateway.vocabulary import Op


def estimate_unreported(
    usage: Usage, op: Op, protocol: Protocol, body: dict[str, Any], raw: bytes, answer: bytes
) -> None:
    """Fill `usage` for a whole-body answer that reported none."""
    if op is Op.EMBEDDINGS:
        usage.prompt_tokens = input_tokens_estimate(protocol, body, raw)
    else:
        usage.prompt_tokens = len(raw) // 4
        usage.completion_tokens = max(1, len(answer) // 4)


def input_tokens_estimate(protocol: Protocol, body: dict[str, Any], raw: bytes) -> int:
    """The estimated input tokens of an embeddings request (OpenAI or Gemini shape)."""
    try:
        texts = openai_inputs(body) if protocol is Protocol.OPENAI else gemini_request_inputs(body)
    except GatewayError:
        # Token arrays or non-text parts: the size estimate the pipeline reserved with.
        return len(raw) // 4
    return estimate_tokens(texts)
