"""Gemini's endpoints, under /v1beta and /v1: parse the wire format, nothing else.

The model and the method come from the path (`models/{model}:{method}`), streaming from
the method. `streamGenerateContent` streams SSE with `?alt=sse` (what the SDKs send) and,
without it, one JSON array of the same chunks, as Gemini does. `GET /v1/models` and
`GET /v1/models/{model}` belong to the OpenAI blueprint, which answers in Gemini's shape
when the key came Gemini-style.
"""

from __future__ import annotations

from urllib.parse import unquote

from sanic import Blueprint, HTTPResponse, Request

from gateway.api.models_list import list_models, show_model
from gateway.errors import NotFound, Protocol
from gateway.request.pipeline import Endpoint, run
from gateway.responses import error_response, request_id_of
from gateway.state import AppState
from gateway.vocabulary import Op

bp = Blueprint("gemini")

GENERATE = Endpoint(Protocol.GEMINI, Op.CHAT, required=(("contents", list),))
STREAM_AS_ARRAY = Endpoint(
    Protocol.GEMINI, Op.CHAT, required=(("contents", list),), json_array=True
)
COUNT_TOKENS = Endpoint(Protocol.GEMINI, Op.COUNT_TOKENS)
EMBED = Endpoint(Protocol.GEMINI, Op.EMBEDDINGS, required=(("content", dict),))
BATCH_EMBED = Endpoint(Protocol.GEMINI, Op.EMBEDDINGS, required=(("requests", list),))

_METHODS = {
    "generateContent": GENERATE,
    "streamGenerateContent": GENERATE,
    "countTokens": COUNT_TOKENS,
    "embedContent": EMBED,
    "batchEmbedContents": BATCH_EMBED,
}


@bp.get("/v1beta/models", name="gemini_models")
async def models(request: Request) -> HTTPResponse:
    return list_models(request, Protocol.GEMINI)


@bp.get("/v1beta/models/<model_id:path>", name="gemini_model")
async def model(request: Request, model_id: str) -> HTTPResponse:
    return show_model(request, unquote(model_id), Protocol.GEMINI)


# The parameter is named as in the OpenAI blueprint's GET /v1/models/<model_id:path>:
# Sanic shares one parameter name between routes of the same path.
@bp.post("/v1beta/models/<model_id:path>", name="gemini_call_v1beta", stream=True)
@bp.post("/v1/models/<model_id:path>", name="gemini_call_v1", stream=True)
async def call(request: Request, model_id: str) -> HTTPResponse | None:
    # Decoded once, as SDKs may escape the ':'; the pipeline's model-name grammar refuses
    # what is left of a second encoding ('%'), and '/', '.' and '..' never reach a URL raw.
    model, sep, method = unquote(model_id).rpartition(":")
    endpoint = _METHODS.get(method) if sep and model else None
    if endpoint is None:
        return _no_such_method(request, method if sep else "")
    stream = method == "streamGenerateContent"
    if stream and request.args.get("alt") != "sse":
        endpoint = STREAM_AS_ARRAY
    return await run(request, endpoint, path_model=model, path_stream=stream)


def _no_such_method(request: Request, method: str) -> HTTPResponse:
    state: AppState = request.app.ctx.state
    snapshot = state.policy.snapshot
    known = ", ".join(_METHODS)
    what = f"the method '{method}'" if method else "no method"
    err = NotFound(
        f"{request.path} names {what}. Use models/{{model}}:{{method}} with one of: {known}."
    )
    commit = snapshot.commit if snapshot else None
    return error_response(err, Protocol.GEMINI, request_id_of(request), commit)
