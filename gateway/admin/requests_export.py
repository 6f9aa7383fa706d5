"""GET /admin/api/requests?since=...: the request log as NDJSON, oldest first (admin only).

What `modelgate policy plan --gateway` replays. One JSON object a line with the fields of
gateway.plan.trace.FIELDS: time, key id, team, model, provider, target, status, error kind,
latency, tokens and cost. Never a prompt, a key hash or a secret (the log holds none).
`since`: Unix seconds, a duration ago (7d, 24h) or an ISO date; left out, every retained row.

Streamed: rows are read from SQLite in batches of 2,000 in a worker thread, encoded there
and sent before the next batch is read, so memory stays flat however many rows there are
(Sanic waits for the client to drain before `send` returns).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Generator, Iterator
from typing import Any

import orjson
from sanic import HTTPResponse, Request

from gateway.admin.common import commit_of, refused, state_of
from gateway.errors import BadRequest, GatewayError, Protocol
from gateway.plan.trace import FIELDS, TraceError, log_batches
from gateway.responses import base_headers, error_response, request_id_of
from gateway.usage.request_report import parse_since

log = logging.getLogger("modelgate.admin")

NDJSON = "application/x-ndjson"


def since_of(text: str | None, now: float) -> float:
    if text is None or not text.strip():
        return 0.0
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_since(text, now)
    except ValueError as exc:
        raise BadRequest(str(exc), param="since") from None


def encode(batch: list[Any]) -> bytes:
    dumps = orjson.dumps
    return b"".join(dumps(dict(zip(FIELDS, row, strict=True))) + b"\n" for row in batch)


def ndjson_chunks(batches: Generator[list[Any]]) -> Generator[bytes]:
    """One NDJSON chunk per batch of rows (what the route sends, and what the bench measures)."""
    try:
        for batch in batches:
            yield encode(batch)
    finally:
        batches.close()  # the read transaction ends with the response, however it ends


def _next(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


async def requests_export(request: Request) -> HTTPResponse | None:
    denied = refused(request)
    if denied is not None:
        return denied
    state = state_of(request)
    rid, commit = request_id_of(request), commit_of(state)
    path = state.recorder.request_log.path
    try:
        since = since_of(request.args.get("since"), time.time())
        if not path.is_file():  # nothing recorded yet: an empty export
            chunks: Iterator[bytes] = iter(())
            first = None
        else:
            chunks = ndjson_chunks(log_batches(path, since))
            first = await asyncio.to_thread(_next, chunks)  # errors answered before streaming
    except GatewayError as err:
        return error_response(err, Protocol.OPENAI, rid, commit)
    except TraceError as exc:
        log.warning("requests export: %s", exc)
        return error_response(ExportUnavailable(), Protocol.OPENAI, rid, commit)
    headers = base_headers(rid, commit)
    headers["cache-control"] = "no-store"
    response = await request.respond(headers=headers, content_type=NDJSON)
    try:
        chunk = first
        while chunk is not None:
            await response.send(chunk)
            chunk = await asyncio.to_thread(_next, chunks)
    except TraceError as exc:  # mid-stream: a last line says the export is incomplete
        log.warning("requests export: %s", exc)
        await response.send(orjson.dumps({"error": "the request log could not be read"}) + b"\n")
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    await response.eof()
    return None


class ExportUnavailable(GatewayError):
    status = 503
    code = "request_log_unavailable"
    kind = "unavailable"

    def __init__(self) -> None:
        super().__init__("The request log cannot be read right now. Retry in a few seconds.")
