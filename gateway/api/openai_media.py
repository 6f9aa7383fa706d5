"""OpenAI's media endpoints: moderations, images, audio and rerank (request.media does the rest).

Streaming routes: the key is checked before any body byte is read, and an upload's body
streams upstream as it arrives.
"""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from gateway.request.media import MediaEndpoint, run_media
from gateway.vocabulary import Op

bp = Blueprint("openai_media")

MODERATIONS = MediaEndpoint(Op.MODERATIONS, required=(("input", object),))
IMAGES = MediaEndpoint(Op.IMAGES, required=(("prompt", str),))
SPEECH = MediaEndpoint(Op.AUDIO_SPEECH, required=(("input", str), ("voice", object)))
RERANK = MediaEndpoint(Op.RERANK, required=(("query", str), ("documents", list)))
TRANSCRIPTIONS = MediaEndpoint(Op.AUDIO_TRANSCRIPTIONS, multipart=True)
TRANSLATIONS = MediaEndpoint(Op.AUDIO_TRANSLATIONS, multipart=True)
IMAGE_EDITS = MediaEndpoint(Op.IMAGE_EDITS, multipart=True)


@bp.post("/v1/moderations", stream=True)
async def moderations(request: Request) -> HTTPResponse | None:
    return await run_media(request, MODERATIONS)


@bp.post("/v1/images/generations", stream=True)
async def images(request: Request) -> HTTPResponse | None:
    return await run_media(request, IMAGES)


@bp.post("/v1/audio/speech", stream=True)
async def speech(request: Request) -> HTTPResponse | None:
    return await run_media(request, SPEECH)


@bp.post("/v1/rerank", stream=True)
async def rerank(request: Request) -> HTTPResponse | None:
    return await run_media(request, RERANK)


@bp.post("/v1/audio/transcriptions", stream=True)
async def transcriptions(request: Request) -> HTTPResponse | None:
    return await run_media(request, TRANSCRIPTIONS)


@bp.post("/v1/audio/translations", stream=True)
async def translations(request: Request) -> HTTPResponse | None:
    return await run_media(request, TRANSLATIONS)


@bp.post("/v1/images/edits", stream=True)
async def image_edits(request: Request) -> HTTPResponse | None:
    return await run_media(request, IMAGE_EDITS)
