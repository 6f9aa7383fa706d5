"""A fake of OpenAI's media endpoints on 127.0.0.1, checking requests against the API
reference's shapes: moderations, images (generations, edits), audio (speech, transcriptions,
translations) and a vLLM/Jina-style rerank.

A shape problem is answered 400 with the problem, so a test sees it in the SDK's error.
Uploads are read part by part as they stream in (a sha256 of the file is the transcript),
and speech is sent in chunks, the rest held until the test calls `release_speech`, so a
gateway that buffered the answer would never deliver the first chunk.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from tests.support.gateway_process import FAKE_UPSTREAM_KEY
from tests.support.loop_thread import ServedApp

SPEECH_CHUNKS = [b"ID3\x04" + bytes(range(256)) * 4, b"\xff\xfb" * 2048, b"\x00end"]
MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None = None
    fields: dict[str, str] = field(default_factory=dict)
    """An upload's form fields, in the order they came (files: name -> sha256)."""
    order: list[str] = field(default_factory=list)


class FakeMedia(ServedApp):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Seen] = []
        self.speech_first_sent = threading.Event()
        self.speech_release = threading.Event()
        self.image_usage = True
        self.fail_next_upload: int | None = None
        """The status the next upload is answered with, once it was read whole."""
        self.break_speech = False
        """Close the connection after the first chunk of speech."""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)  # uploads are read part by part
        app.router.add_post("/v1/moderations", self._moderations)
        app.router.add_post("/v1/images/generations", self._images)
        app.router.add_post("/v1/images/edits", self._image_edits)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_post("/v1/audio/translations", self._transcriptions)
        app.router.add_post("/v1/rerank", self._rerank)
        return app

    def stop(self) -> None:
        self.speech_release.set()
        super().stop()

    def release_speech(self) -> None:
        self.speech_release.set()

    # checks ----------------------------------------------------------------------------
    async def _json(self, request: web.Request, required: dict[str, type]) -> dict[str, Any]:
        self._check_auth(request)
        if request.content_type != "application/json":
            raise _bad(f"content-type {request.content_type}")
        body = await request.json()
        self.seen.append(Seen(request.path, dict(request.headers), json=body))
        for name, kind in required.items():
            if not isinstance(body.get(name), kind):
                raise _bad(f"'{name}' is required ({kind.__name__})")
        return body  # type: ignore[no-any-return]

    @staticmethod
    def _check_auth(request: web.Request) -> None:
        if request.headers.get("authorization") != f"Bearer {FAKE_UPSTREAM_KEY}":
            raise web.HTTPUnauthorized(
                text='{"error": {"message": "bad upstream key"}}', content_type="application/json"
            )

    # endpoints -------------------------------------------------------------------------
    async def _moderations(self, request: web.Request) -> web.Response:
        body = await self._json(request, {"model": str})
        inputs = body.get("input")
        if not isinstance(inputs, (str, list)):
            raise _bad("'input' must be a string or an array")
        count = len(inputs) if isinstance(inputs, list) else 1
        result = {
            "flagged": False,
            "categories": dict.fromkeys(MODERATION_CATEGORIES, False),
            "category_scores": dict.fromkeys(MODERATION_CATEGORIES, 0.001),
            "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES},
        }
        return web.json_response(
            {"id": "modr-1", "model": body["model"], "results": [result] * count}
        )

    async def _images(self, request: web.Request) -> web.Response:
        body = await self._json(request, {"model": str, "prompt": str})
        n = body.get("n", 1)
        answer: dict[str, Any] = {
            "created": 1700000000,
            "data": [{"b64_json": "iVBORw0KGgo" + "A" * 4000} for _ in range(n)],
        }
        if self.image_usage:
            answer["usage"] = {
                "input_tokens": 50,
                "output_tokens": 1056 * n,
                "total_tokens": 50 + 1056 * n,
                "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
            }
        return web.json_response(answer)

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        await self._json(request, {"model": str, "input": str, "voice": str})
        response = web.StreamResponse(headers={"content-type": "audio/mpeg"})
        await response.prepare(request)
        await response.write(SPEECH_CHUNKS[0])
        self.speech_first_sent.set()
        if self.break_speech:
            assert request.transport is not None
            request.transport.close()
            return response
        await asyncio.to_thread(self.speech_release.wait, 10)
        for chunk in SPEECH_CHUNKS[1:]:
            await response.write(chunk)
        await response.write_eof()
        return response

    async def _rerank(self, request: web.Request) -> web.Response:
        body = await self._json(request, {"model": str, "query": str, "documents": list})
        documents = body["documents"]
        results = [
            {"index": i, "relevance_score": 1.0 / (i + 1), "document": {"text": d}}
            for i, d in enumerate(documents)
        ]
        usage = {"total_tokens": 42}
        return web.json_response(
            {"id": "rerank-1", "model": body["model"], "usage": usage, "results": results}
        )

    async def _transcriptions(self, request: web.Request) -> web.Response:
        seen = await self._upload(request, {"model", "file"})
        text = f"sha256:{seen.fields['file']}"
        return web.json_response({"text": text, "usage": {"type": "duration", "seconds": 3}})

    async def _image_edits(self, request: web.Request) -> web.Response:
        await self._upload(request, {"model", "prompt", "image"})
        return web.json_response({"created": 1700000000, "data": [{"b64_json": "iVBOR"}]})

    async def _upload(self, request: web.Request, required: set[str]) -> Seen:
        self._check_auth(request)
        if request.content_type != "multipart/form-data":
            raise _bad(f"content-type {request.content_type}")
        seen = Seen(request.path, dict(request.headers))
        self.seen.append(seen)
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            assert isinstance(part, BodyPartReader)
            name = part.name or ""
            seen.order.append(name)
            if part.filename is not None:
                digest = hashlib.sha256()
                while chunk := await part.read_chunk(64 * 1024):
                    digest.update(chunk)
                seen.fields[name] = digest.hexdigest()
            else:
                seen.fields[name] = (await part.read()).decode()
        failure, self.fail_next_upload = self.fail_next_upload, None
        if failure is not None:
            raise _failed(failure)
        missing = required - set(seen.fields) - ({"image"} if "image[]" in seen.fields else set())
        if missing:
            raise _bad(f"missing fields {sorted(missing)}")
        return seen


def _failed(status: int) -> web.HTTPException:
    error = web.HTTPException(
        text='{"error": {"message": "upstream trouble"}}', content_type="application/json"
    )
    error.set_status(status)
    return error


def _bad(problem: str) -> web.HTTPBadRequest:
    error = {"error": {"message": problem, "type": "invalid_request_error"}}
    return web.HTTPBadRequest(text=json.dumps(error), content_type="application/json")
