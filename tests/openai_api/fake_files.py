"""A fake of OpenAI's files and batches on 127.0.0.1, checking requests against the API
reference's shapes: POST /v1/files (multipart: purpose, file), GET /v1/files (after, limit,
order, purpose), GET/DELETE /v1/files/{id}, GET /v1/files/{id}/content, POST /v1/batches
(input_file_id, endpoint, completion_window, metadata), GET /v1/batches/{id}, POST
/v1/batches/{id}/cancel, GET /v1/batches.

Uploads are read part by part as they stream in; the file's bytes are kept (tests check what
arrived). A test finishes a batch with `complete`, which adds an output file and usage.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from tests.support.gateway_process import FAKE_UPSTREAM_KEY
from tests.support.loop_thread import LoopThread, serve_app

BATCH_ENDPOINTS = {"/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/responses"}
PURPOSES = {"assistants", "batch", "fine-tune", "vision", "user_data", "evals"}


@dataclass
class FakeFiles:
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    """The part names of the last upload, in order."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _thread: LoopThread = field(default_factory=LoopThread)
    _runner: web.AppRunner | None = None
    port: int = 0

    def start(self) -> FakeFiles:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files", self._list_files)
        app.router.add_get("/v1/files/{id}", self._get_file)
        app.router.add_delete("/v1/files/{id}", self._delete_file)
        app.router.add_get("/v1/files/{id}/content", self._content)
        app.router.add_post("/v1/batches", self._create_batch)
        app.router.add_get("/v1/batches", self._list_batches)
        app.router.add_get("/v1/batches/{id}", self._get_batch)
        app.router.add_post("/v1/batches/{id}/cancel", self._cancel)
        self._runner, self.port = self._thread.run(serve_app(app))
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._thread.run(self._runner.cleanup())
        self._thread.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def complete(self, batch_id: str, usage: dict[str, Any]) -> str:
        """Finish a batch: an output file and the usage; the output file's id."""
        output = self._new_file(b'{"id": "out"}\n', "batch_output.jsonl", "batch_output")
        self.batches[batch_id].update(
            status="completed", output_file_id=output, usage=usage, completed_at=int(time.time())
        )
        return output

    # ------------------------------------------------------------------------------------
    def _new_file(self, content: bytes, filename: str, purpose: str) -> str:
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
        }
        self.contents[file_id] = content
        return file_id

    async def _upload(self, request: web.Request) -> web.Response:
        _check_auth(request)
        if request.content_type != "multipart/form-data":
            raise _bad(f"content-type {request.content_type}")
        reader = await request.multipart()
        fields: dict[str, str] = {}
        content, filename = b"", ""
        self.order = []
        while (part := await reader.next()) is not None:
            assert isinstance(part, BodyPartReader)
            self.order.append(part.name or "")
            if part.filename is not None:
                filename = part.filename
                chunks = bytearray()
                while chunk := await part.read_chunk(256 * 1024):
                    chunks += chunk
                content = bytes(chunks)
            else:
                fields[part.name or ""] = (await part.read()).decode()
        if fields.get("purpose") not in PURPOSES or not filename:
            raise _bad("'purpose' and 'file' are required")
        if fields["purpose"] == "batch":
            for number, line in enumerate(content.splitlines(), 1):
                body = json.loads(line)
                if set(body) != {"custom_id", "method", "url", "body"}:
                    raise _bad(f"line {number}: fields {sorted(body)}")
        file_id = self._new_file(content, filename, fields["purpose"])
        return web.json_response(self.files[file_id])

    async def _list_files(self, request: web.Request) -> web.Response:
        _check_auth(request)
        data = sorted(self.files.values(), key=lambda f: f["created_at"], reverse=True)
        return web.json_response(_page(data, request))

    def _file(self, request: web.Request) -> dict[str, Any]:
        _check_auth(request)
        found = self.files.get(request.match_info["id"])
        if found is None:
            raise _missing("File", request.match_info["id"])
        return found

    async def _get_file(self, request: web.Request) -> web.Response:
        return web.json_response(self._file(request))

    async def _delete_file(self, request: web.Request) -> web.Response:
        found = self._file(request)
        del self.files[found["id"]]
        return web.json_response({"id": found["id"], "object": "file", "deleted": True})

    async def _content(self, request: web.Request) -> web.Response:
        found = self._file(request)
        return web.Response(
            body=self.contents[found["id"]], content_type="application/octet-stream"
        )

    async def _create_batch(self, request: web.Request) -> web.Response:
        _check_auth(request)
        body = await request.json()
        for name in ("input_file_id", "endpoint", "completion_window"):
            if not isinstance(body.get(name), str):
                raise _bad(f"'{name}' is required")
        if body["endpoint"] not in BATCH_ENDPOINTS or body["completion_window"] != "24h":
            raise _bad("bad endpoint or completion_window")
        extra = set(body) - {"input_file_id", "endpoint", "completion_window", "metadata"}
        if extra:
            raise _bad(f"unknown fields {sorted(extra)}")
        source = self.files.get(body["input_file_id"])
        if source is None or source["purpose"] != "batch":
            raise _bad("input file must be a batch file")
        batch_id = f"batch_{next(self._ids)}"
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": body["input_file_id"],
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(time.time()),
            "request_counts": {"total": 1, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        return web.json_response(self.batches[batch_id])

    def _batch(self, request: web.Request) -> dict[str, Any]:
        _check_auth(request)
        found = self.batches.get(request.match_info["id"])
        if found is None:
            raise _missing("Batch", request.match_info["id"])
        return found

    async def _get_batch(self, request: web.Request) -> web.Response:
        return web.json_response(self._batch(request))

    async def _cancel(self, request: web.Request) -> web.Response:
        found = self._batch(request)
        found["status"] = "cancelling"
        return web.json_response(found)

    async def _list_batches(self, request: web.Request) -> web.Response:
        _check_auth(request)
        data = sorted(self.batches.values(), key=lambda b: b["created_at"], reverse=True)
        return web.json_response(_page(data, request))


def _page(data: list[dict[str, Any]], request: web.Request) -> dict[str, Any]:
    limit = int(request.query.get("limit", "20"))
    page = data[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(data) > limit,
    }


def _check_auth(request: web.Request) -> None:
    if request.headers.get("authorization") != f"Bearer {FAKE_UPSTREAM_KEY}":
        raise web.HTTPUnauthorized(
            text='{"error": {"message": "bad upstream key"}}', content_type="application/json"
        )


def _missing(kind: str, obj_id: str) -> web.HTTPNotFound:
    error = {
        "error": {"message": f"No such {kind} object: {obj_id}", "type": "invalid_request_error"}
    }
    return web.HTTPNotFound(text=json.dumps(error), content_type="application/json")


def _bad(problem: str) -> web.HTTPBadRequest:
    error = {"error": {"message": problem, "type": "invalid_request_error"}}
    return web.HTTPBadRequest(text=json.dumps(error), content_type="application/json")
