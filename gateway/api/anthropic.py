"""Anthropic's endpoints: parse the wire format, nothing else (the pipeline does the rest)."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from gateway.errors import Protocol
from gateway.request.pipeline import Endpoint, run
from gateway.vocabulary import Op

# Generation routes stream their bodies: the pipeline reads one only after its key passed.
bp = Blueprint("anthropic")

MESSAGES = Endpoint(Protocol.ANTHROPIC, Op.CHAT, required=(("messages", list), ("max_tokens", int)))
COUNT_TOKENS = Endpoint(Protocol.ANTHROPIC, Op.COUNT_TOKENS, required=(("messages", list),))


@bp.post("/v1/messages", name="anthropic_messages", stream=True)
async def messages(request: Request) -> HTTPResponse | None:
    return await run(request, MESSAGES)


@bp.post("/v1/messages/count_tokens", name="anthropic_count_tokens", stream=True)
async def count_tokens(request: Request) -> HTTPResponse | None:
    return await run(request, COUNT_TOKENS)
