"""OpenAI's media endpoints (moderations, images, audio, rerank) through the pipeline's stages.

The same stages as `pipeline.run`, in the same order and with the same functions: ① the key
(before any body byte is read), the body, the model name, ③ the route (404 before 403, then
the route's `operations:` and the OpenAI-family targets: request.operations), ② admission,
⑤ the dispatcher (credential pools, retries, failover, cooldowns), ⑦ the settlement and the
record. What differs, and why this is not `pipeline.run`:
- an upload (multipart: transcriptions, translations, image edits) is routed by a form field
  read from the start of its stream, and the rest streams upstream (request.upload): its
  body is never read whole, as `run` reads every body;
- the upstream body is the client's with the model replaced, for OpenAI-family providers
  only: nothing is translated, so request.plan's translation is never involved;
- every answer is relayed as it arrives (request.binary_relay): speech is audio, and an
  image answer can be megabytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sanic import HTTPResponse, Request

from gateway.protocols import ADAPTER_OF_TYPE
from gateway.request.binary_relay import relay_bytes
from gateway.request.forwarded_headers import forwarded_headers
from gateway.request.governed import Governed, governed
from gateway.request.media_usage import AnswerWindow, count_answer
from gateway.request.model_names import check_model_name
from gateway.request.operations import check_operation
from gateway.request.pipeline import (
    check_required,
    model_field,
    parse_body,
    resolve_route,
)
from gateway.request.upload import Upload, UploadSpent
from gateway.upstream.dispatch import ForwardHeaders
from gateway.vocabulary import Op, Protocol
from policies.snapshot import Target

UPLOAD_PROMPT_ESTIMATE = 1
"""What admission reserves for an upload: its tokens are audio or images, unknown before the
answer (the settlement counts what the answer reports)."""


@dataclass(frozen=True, slots=True)
class MediaEndpoint:
    op: Op
    required: tuple[tuple[str, type], ...] = ()
    """JSON fields that must be present, with their type (checked before anything is sent)."""
    multipart: bool = False


@dataclass(frozen=True, slots=True)
class MediaPlan:
    """What the dispatcher sends to one target (gateway.upstream.dispatch.UpstreamCall)."""

    op: Op
    body: bytes
    """JSON bytes, or an upload's stream (see `upload_plan`)."""


async def run_media(request: Request, endpoint: MediaEndpoint) -> HTTPResponse | None:
    """Serve one media request end to end; errors answer in OpenAI's shape."""
    return await governed(request, Protocol.OPENAI, _media, endpoint)


async def _media(g: Governed, endpoint: MediaEndpoint) -> HTTPResponse | None:
    snapshot, principal = g.authenticate()
    forwarded = forwarded_headers(g.request.headers, Protocol.OPENAI)
    upload: Upload | None = None
    try:
        body: dict[str, Any] | None = None
        if endpoint.multipart:
            upload = Upload(g.request, g.state.bodies.timeout_s)
            model = await upload.read_head()
            estimate = UPLOAD_PROMPT_ESTIMATE
        else:
            await g.read_body()
            body = parse_body(g.request.body)
            model = model_field(body)
            estimate = len(g.request.body) // 4
        check_model_name(model)
        g.ex.asked(model, body is not None and _asks_stream(endpoint.op, body))
        if body is not None:
            check_required(body, endpoint.required)
        route = check_operation(resolve_route(snapshot, principal, model), endpoint.op)
        settlement, headers = await g.admit(principal.scopes, estimate)
        if upload is not None:
            plans: Any = _UploadPlans(endpoint.op, upload)
            forwarded = _with_content_type(forwarded, upload.content_type)
        else:
            assert body is not None
            plans = _JsonPlans(endpoint.op, body)
        opened = await g.state.dispatcher.open(route, True, plans, forwarded)
        g.ex.opened(opened.target)
        size = len(g.request.body) if body is not None else 0

        def count(window: AnswerWindow | None) -> None:
            count_answer(endpoint.op, g.ex.usage, window, body, size)

        await relay_bytes(g.request, opened, g.ex, settlement, headers, count)
        return None
    finally:
        if upload is not None:
            upload.close()


def _asks_stream(op: Op, body: dict[str, Any]) -> bool:
    """Speech is always relayed as it comes; images stream on `stream: true`."""
    return op is Op.AUDIO_SPEECH or body.get("stream") is True


def _with_content_type(forwarded: ForwardHeaders | None, content_type: str) -> ForwardHeaders:
    """The upload's own content type (its boundary) replaces the JSON one; media targets
    are all OpenAI-family, so the dispatcher adds these headers to each of them."""
    found = dict(forwarded[1]) if forwarded is not None else {}
    found["content-type"] = content_type
    return (Protocol.OPENAI, found)


class _JsonPlans:
    """The client's JSON with each target's model (nothing else is changed)."""

    def __init__(self, op: Op, body: dict[str, Any]) -> None:
        self._op, self._body = op, body

    def __call__(self, target: Target) -> MediaPlan:
        provider = target.provider
        adapter = ADAPTER_OF_TYPE[provider.type]
        body = {**self._body, "model": adapter.body_model(target.upstream_model)}
        # Written anew: a duplicate key in the client's bytes could name another model.
        return MediaPlan(self._op, orjson.dumps(adapter.finish_body(provider, self._op, body)))


class _UploadPlans:
    """The upload with each target's model in its `model` field."""

    def __init__(self, op: Op, upload: Upload) -> None:
        self._op, self._upload = op, upload

    def __call__(self, target: Target) -> MediaPlan:
        if self._upload.spent:  # refused before another target is even connected to
            raise UploadSpent(self._upload.model)
        stream: AsyncIterable[bytes] = self._upload.body_for(target.upstream_model.encode())
        # The upstream client sends an async iterable as a chunked body; the dispatcher
        # passes `body` to it untouched (UpstreamCall names bytes only).
        return MediaPlan(self._op, cast(bytes, stream))
