"""OpenAI's endpoints: parse the wire format, nothing else (the pipeline does the rest)."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from gateway.api.models_list import list_models, show_model
from gateway.errors import Protocol
from gateway.request.pipeline import Endpoint, run
from gateway.vocabulary import Op

# Generation routes stream their bodies: the pipeline reads one only after its key passed.
bp = Blueprint("openai")

CHAT = Endpoint(Protocol.OPENAI, Op.CHAT, required=(("messages", list),))
COMPLETIONS = Endpoint(Protocol.OPENAI, Op.COMPLETIONS, required=(("prompt", object),))
EMBEDDINGS = Endpoint(Protocol.OPENAI, Op.EMBEDDINGS, required=(("input", object),))
RESPONSES = Endpoint(Protocol.OPENAI, Op.RESPONSES, required=(("input", object),))


@bp.post("/v1/chat/completions", stream=True)
@bp.post("/chat/completions", name="chat_completions_unversioned", stream=True)
async def chat_completions(request: Request) -> HTTPResponse | None:
    return await run(request, CHAT)


@bp.post("/v1/completions", stream=True)
async def completions(request: Request) -> HTTPResponse | None:
    return await run(request, COMPLETIONS)


@bp.post("/v1/embeddings", stream=True)
async def embeddings(request: Request) -> HTTPResponse | None:
    return await run(request, EMBEDDINGS)


@bp.post("/v1/responses", stream=True)
async def responses(request: Request) -> HTTPResponse | None:
    return await run(request, RESPONSES)


@bp.get("/v1/models")
async def models(request: Request) -> HTTPResponse:
    return list_models(request)


@bp.get("/v1/models/<model_id:path>")
async def model(request: Request, model_id: str) -> HTTPResponse:
    return show_model(request, model_id)
