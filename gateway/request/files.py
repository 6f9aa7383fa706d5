"""/v1/files, bound to the key that uploaded each file (issue 15).

- POST /v1/files streams the upload to the key's batch route (request.files_upstream); a
  batch file's lines are checked and rewritten on the way (request.batch_upload and
  request.jsonl_models). The body is never held whole; it is sent once (a failure after its
  first byte went out is a 502: upload again).
- GET/DELETE /v1/files/{id} and GET /v1/files/{id}/content: a file the key does not own is
  404, worded as for a file that does not exist, and the upstream is not called.
- GET /v1/files lists the key's own files from the ownership store (after, limit, order,
  purpose as OpenAI takes them), so a page never holds another key's file nor is cut short
  by them. A batch's output and error files, owned once the gateway has seen the batch name
  them, are fetched from the upstream the first time they are listed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import quote

from sanic import HTTPResponse, Request
from sanic.exceptions import PayloadTooLarge

from gateway.errors import BadRequest, NotFound, UpstreamClientError, UpstreamFailed
from gateway.front_door import limit_body
from gateway.request.batch_upload import FileUploadBody
from gateway.request.binary_relay import relay_bytes
from gateway.request.body import BodyTimeout, body_too_large
from gateway.request.files_upstream import batch_route, held_route
from gateway.request.jsonl_models import BatchLines
from gateway.request.line_models import LineRouter
from gateway.request.multipart_model import boundary_of
from gateway.request.ownership import Owned
from gateway.request.resources import Served
from gateway.responses import base_headers
from gateway.upstream.dispatch import ResourceCall
from gateway.vocabulary import Protocol
from policies.snapshot import ResolvedRoute

FILE_MAX_BYTES = 512 * 1024 * 1024
"""OpenAI's own limit for one file (a batch input file: 200 MB)."""
FILES_PAGE_MAX = 10_000


def missing_file(file_id: str) -> NotFound:
    return NotFound(f"No such File object: {file_id[:128]}", param="id")


async def owned_file(served: Served, file_id: str) -> tuple[Owned, ResolvedRoute]:
    """The key's file and the route that holds it; 404 for any other id."""
    owned = await served.store.afind("file", file_id, served.principal.key_id)
    route = held_route(served.snapshot, served.principal, owned.route) if owned else None
    if owned is None or route is None:
        raise missing_file(file_id)
    return owned, route


async def create_file(served: Served) -> HTTPResponse:
    request = served.request
    route = batch_route(served.snapshot, served.principal)
    content_type = request.headers.get("content-type", "")
    lines = LineRouter(served.snapshot, served.principal, route)
    max_line = served.state.settings.max_body_bytes
    upload = FileUploadBody(
        boundary_of(content_type), lambda: BatchLines(lines.model_for, max_line)
    )
    forwarded = dict(served.forwarded[1]) if served.forwarded else {}
    forwarded["content-type"] = content_type  # its boundary, which the body keeps
    served.forwarded = (Protocol.OPENAI, forwarded)
    limit_body(request, FILE_MAX_BYTES)
    body = _OnceBody(request, upload, served.state.bodies.timeout_s)
    # The upstream client sends an async iterable as a chunked body (as request.upload's).
    data = await served.call(route, ResourceCall("POST", "/files", cast(bytes, body)))
    file_id = data.get("id")
    if not isinstance(file_id, str):
        raise UpstreamFailed("The upstream's file object has no id.")
    await served.store.aclaim("file", file_id, served.principal.key_id, route.name, data)
    return served.answer(data)


async def list_files(served: Served) -> HTTPResponse:
    args = served.request.args
    limit = int_arg(args.get("limit"), "limit", 1, FILES_PAGE_MAX, FILES_PAGE_MAX)
    order = args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise BadRequest("'order' must be asc or desc.", param="order")
    page = await asyncio.to_thread(
        served.store.page,
        "file",
        served.principal.key_id,
        after=args.get("after"),
        limit=limit,
        newest_first=order == "desc",
        purpose=args.get("purpose"),
    )
    data: list[dict[str, Any]] = []
    for row in page.rows:
        obj = row.object if row.object is not None else await _fetch_output_file(served, row)
        if obj is not None:
            data.append(obj)
    return served.answer(list_object(data, page.has_more))


async def get_file(served: Served, file_id: str) -> HTTPResponse:
    _, route = await owned_file(served, file_id)
    data = await served.call(route, ResourceCall("GET", f"/files/{_segment(file_id)}"))
    await served.store.aremember("file", file_id, data)
    return served.answer(data)


async def delete_file(served: Served, file_id: str) -> HTTPResponse:
    _, route = await owned_file(served, file_id)
    data = await served.call(route, ResourceCall("DELETE", f"/files/{_segment(file_id)}"))
    if data.get("deleted") is True:
        await served.store.aforget("file", file_id)
    return served.answer(data)


async def file_content(served: Served, file_id: str) -> HTTPResponse | None:
    _, route = await owned_file(served, file_id)
    call = ResourceCall("GET", f"/files/{_segment(file_id)}/content")
    opened = await served.open(route, call)
    headers = base_headers(served.ex.request_id, served.snapshot.commit)
    headers.update(served.headers)
    # A file's bytes report no usage; the call is settled before the answer ends.
    count = lambda _window: None  # noqa: E731
    await relay_bytes(served.request, opened, served.ex, served.settlement, headers, count)
    return None


def list_object(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0].get("id") if data else None,
        "last_id": data[-1].get("id") if data else None,
        "has_more": has_more,
    }


async def _fetch_output_file(served: Served, row: Owned) -> dict[str, Any] | None:
    """A batch's output file, listed for the first time: its object from the upstream (None
    when it is gone there, and it is forgotten)."""
    route = held_route(served.snapshot, served.principal, row.route)
    if route is None:
        return None
    try:
        data = await served.call(route, ResourceCall("GET", f"/files/{_segment(row.id)}"))
    except UpstreamClientError as err:
        if err.status_code == 404:
            await served.store.aforget("file", row.id)
        return None
    await served.store.aremember("file", row.id, data)
    return data


def _segment(value: str) -> str:
    return quote(value, safe="")


def int_arg(raw: str | None, name: str, low: int, high: int, default: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise BadRequest(f"'{name}' must be an integer from {low} to {high}.", param=name)
    return value


class _OnceBody:
    """The rewritten upload, iterable once: a retry after its first byte went out is a 502."""

    def __init__(self, request: Request, upload: FileUploadBody, idle_timeout_s: float) -> None:
        self._request, self._upload, self._idle = request, upload, idle_timeout_s
        self._started = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started:
            raise UpstreamFailed(
                "The upstream failed after the upload was sent to it; an upload is not sent "
                "twice. Retry the request."
            )
        self._started = True
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self._read()) is not None:
            out = self._upload.feed(chunk)
            if out:
                yield out
        self._upload.finish()
        if not self._upload.has_file:
            raise BadRequest("'file' is required.", param="file")

    async def _read(self) -> bytes | None:
        stream: Any = self._request.stream
        try:
            async with asyncio.timeout(self._idle):
                chunk: bytes | None = await stream.read()
        except TimeoutError:
            raise BodyTimeout(
                f"The upload sent nothing for {self._idle:g} s. Send it faster."
            ) from None
        except PayloadTooLarge:
            raise body_too_large(FILE_MAX_BYTES) from None
        return chunk
