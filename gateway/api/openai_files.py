"""OpenAI's files and batches, bound to the key that created them (request.files and
request.batches do the rest; request.files_upstream says which upstream holds them).

Streaming routes: the key is checked before any body byte is read, and an upload streams
upstream as it arrives.
"""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from gateway.request import batches, files
from gateway.request.resources import Served, run_resource

bp = Blueprint("openai_files")


@bp.post("/v1/files", stream=True)
async def create_file(request: Request) -> HTTPResponse | None:
    return await run_resource(request, files.create_file, reads_body=False)


@bp.get("/v1/files")
async def list_files(request: Request) -> HTTPResponse | None:
    return await run_resource(request, files.list_files, reads_body=False)


@bp.get("/v1/files/<file_id:str>")
async def get_file(request: Request, file_id: str) -> HTTPResponse | None:
    async def handle(served: Served) -> HTTPResponse:
        return await files.get_file(served, file_id)

    return await run_resource(request, handle, reads_body=False)


@bp.delete("/v1/files/<file_id:str>")
async def delete_file(request: Request, file_id: str) -> HTTPResponse | None:
    async def handle(served: Served) -> HTTPResponse:
        return await files.delete_file(served, file_id)

    return await run_resource(request, handle, reads_body=False)


@bp.get("/v1/files/<file_id:str>/content")
async def file_content(request: Request, file_id: str) -> HTTPResponse | None:
    async def handle(served: Served) -> HTTPResponse | None:
        return await files.file_content(served, file_id)

    return await run_resource(request, handle, reads_body=False)


@bp.post("/v1/batches", stream=True)
async def create_batch(request: Request) -> HTTPResponse | None:
    return await run_resource(request, batches.create_batch, reads_body=True)


@bp.get("/v1/batches")
async def list_batches(request: Request) -> HTTPResponse | None:
    return await run_resource(request, batches.list_batches, reads_body=False)


@bp.get("/v1/batches/<batch_id:str>")
async def get_batch(request: Request, batch_id: str) -> HTTPResponse | None:
    async def handle(served: Served) -> HTTPResponse:
        return await batches.get_batch(served, batch_id)

    return await run_resource(request, handle, reads_body=False)


@bp.post("/v1/batches/<batch_id:str>/cancel", stream=True)
async def cancel_batch(request: Request, batch_id: str) -> HTTPResponse | None:
    async def handle(served: Served) -> HTTPResponse:
        return await batches.cancel_batch(served, batch_id)

    return await run_resource(request, handle, reads_body=True)
