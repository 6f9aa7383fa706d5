"""A multipart upload (audio, images) streamed upstream, never held whole.

The body is read only after the key was accepted, up to the end of its `model` field (the
SDKs send their form fields before the file); those first bytes are kept, in memory up to
HEAD_IN_MEMORY and on disk beyond (a client that sends the file first, as curl examples do),
then the upstream gets them, with the model's value replaced by the target's upstream model,
and the rest of the body as it arrives, with back-pressure: the gateway holds a chunk at a
time. An upload is bounded in size (413) and in the time between two of its chunks (408).

Its rest can be sent once: the first target that takes it gets it all. Once a byte of the
rest has gone out, a retry or a failover to another target is refused with a 502 (the client
may retry the upload); before that (a connection error, or a body that came whole with its
head), the next attempt gets the whole body.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from typing import IO, Protocol, cast

from sanic import Request
from sanic.exceptions import PayloadTooLarge

from gateway.errors import UpstreamFailed
from gateway.front_door import limit_body
from gateway.request.body import BodyTimeout, body_too_large
from gateway.request.multipart_model import ModelFieldScanner, boundary_of

UPLOAD_MAX_BYTES = 64 * 1024 * 1024
"""Larger than OpenAI's own limits (25 MB of audio; image edits of 50 MB are rare)."""
HEAD_IN_MEMORY = 1024 * 1024
REPLAY_CHUNK = 64 * 1024


class UploadSpent(UpstreamFailed):
    def __init__(self, model: str) -> None:
        super().__init__(
            f"The upstream for '{model}' failed after the upload was sent to it; an upload "
            "is not sent twice. Retry the request."
        )


class Upload:
    """One request's multipart body: its head read, its rest still with the client."""

    def __init__(self, request: Request, idle_timeout_s: float) -> None:
        self.content_type = request.headers.get("content-type", "")
        self._scanner = ModelFieldScanner(boundary_of(self.content_type))
        self._request = request
        self._idle_timeout_s = idle_timeout_s
        # Closed by close(), which the request's pipeline calls whatever happened.
        self._head: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=HEAD_IN_MEMORY)  # noqa: SIM115
        self._head_size = 0
        self._ended = False
        self.spent = False
        """The rest of the body started going to an upstream: it cannot be sent again."""
        self.model = ""
        self._span = (0, 0)

    async def read_head(self) -> str:
        """Read up to the end of the model field; its value (400 when there is none)."""
        limit_body(self._request, UPLOAD_MAX_BYTES)
        while True:
            chunk = await self._read()
            if chunk is None:
                self._scanner.finish()
                break
            self._head.write(chunk)
            self._head_size += len(chunk)
            if self._scanner.feed(chunk):
                break
        assert self._scanner.model is not None and self._scanner.span is not None
        self.model, self._span = self._scanner.model, self._scanner.span
        return self.model

    def close(self) -> None:
        self._head.close()

    def body_for(self, model_value: bytes) -> AsyncIterable[bytes]:
        """The body with the model's value replaced; fails with UploadSpent once spent."""
        return _Body(self, model_value)

    async def _chunks(self, model_value: bytes) -> AsyncIterator[bytes]:
        if self.spent:
            raise UploadSpent(self.model)
        start, end = self._span
        for at, size in _pieces(0, start):
            yield self._head_bytes(at, size)
        yield model_value
        for at, size in _pieces(end, self._head_size):
            yield self._head_bytes(at, size)
        while (chunk := await self._read()) is not None:
            self.spent = True  # a byte of the rest went out: there is no second copy
            yield chunk

    def _head_bytes(self, at: int, size: int) -> bytes:
        self._head.seek(at)
        return self._head.read(size)

    async def _read(self) -> bytes | None:
        if self._ended:
            return None
        stream = cast(_Readable, self._request.stream)
        try:
            async with asyncio.timeout(self._idle_timeout_s):
                chunk = await stream.read()
        except TimeoutError:
            raise BodyTimeout(
                f"The upload sent nothing for {self._idle_timeout_s:g} s. Send it faster."
            ) from None
        except PayloadTooLarge:
            raise body_too_large(UPLOAD_MAX_BYTES) from None
        if chunk is None:
            self._ended = True
        return chunk


def _pieces(start: int, end: int) -> Iterator[tuple[int, int]]:
    for at in range(start, end, REPLAY_CHUNK):
        yield at, min(REPLAY_CHUNK, end - at)


class _Readable(Protocol):
    """Sanic's request stream (its Http object) as a streaming route reads it."""

    async def read(self) -> bytes | None: ...


class _Body:
    """An async iterable the upstream client may iterate once per attempt."""

    __slots__ = ("_model_value", "_upload")

    def __init__(self, upload: Upload, model_value: bytes) -> None:
        self._upload, self._model_value = upload, model_value

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._upload._chunks(self._model_value)
