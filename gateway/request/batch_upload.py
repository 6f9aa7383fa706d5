"""A file upload's multipart body, passed on as it streams, its batch file rewritten line by line.

POST /v1/files is multipart/form-data with a `purpose` field and a `file` part. The body goes
upstream byte for byte except the content of a file whose purpose is `batch`, which goes
through request.jsonl_models (each line's model checked and rewritten). The purpose must
come before the file (the SDKs, and OpenAI's own curl examples, send it first): a file that
comes first cannot be told a batch file before it has gone upstream, so it is refused (400).

The parser holds a part's headers (up to MAX_PART_HEADERS), a form field's value (up to
MAX_FIELD_BYTES), a delimiter's length of content, and the batch line being read: never the
file.
"""

from __future__ import annotations

from collections.abc import Callable
from email.parser import HeaderParser
from enum import Enum
from typing import Protocol

from gateway.errors import BadRequest

MAX_PART_HEADERS = 16 * 1024
MAX_FIELD_BYTES = 64 * 1024
BATCH_PURPOSE = "batch"


class Content(Protocol):
    """What a part's content goes through on its way upstream."""

    def feed(self, chunk: bytes) -> bytes: ...
    def finish(self) -> bytes: ...


class _Passed:
    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def finish(self) -> bytes:
        return b""


class _Field:
    """A form field's value, kept (it is small) and passed on unchanged."""

    def __init__(self) -> None:
        self.value = bytearray()

    def feed(self, chunk: bytes) -> bytes:
        self.value += chunk
        if len(self.value) > MAX_FIELD_BYTES:
            raise BadRequest(f"A form field is longer than {MAX_FIELD_BYTES} bytes.")
        return chunk

    def finish(self) -> bytes:
        return b""


class _State(Enum):
    CONTENT = "a part's content (or the preamble)"
    AFTER_DELIMITER = "a delimiter's CRLF, or the closing --"
    HEADERS = "a part's headers"
    END = "after the closing delimiter"


class FileUploadBody:
    """Feed the client's body chunks in order; each call returns the bytes to send on."""

    def __init__(self, boundary: bytes, batch_lines: Callable[[], Content]) -> None:
        self._delimiter = b"\r\n--" + boundary
        self._batch_lines = batch_lines
        # The first delimiter has no CRLF before it: parse as if it had one, never send it.
        self._buffer = bytearray(b"\r\n")
        self._skip = 2
        self._state = _State.CONTENT
        self._content: Content = _Passed()
        self._field: tuple[str, _Field] | None = None
        self.purpose: str | None = None
        self.has_file = False

    @property
    def ended(self) -> bool:
        return self._state is _State.END

    def feed(self, chunk: bytes) -> bytes:
        self._buffer += chunk
        out = bytearray()
        while self._step(out):
            pass
        if self._skip:
            cut = min(self._skip, len(out))
            del out[:cut]
            self._skip -= cut
        return bytes(out)

    def finish(self) -> None:
        """The body ended: a 400 when its closing delimiter never came."""
        if self._state is not _State.END:
            raise BadRequest("The multipart body ended before its closing boundary.")

    def _step(self, out: bytearray) -> bool:
        """Parse what the buffer allows; False when it needs more bytes."""
        buffer = self._buffer
        if self._state is _State.END:
            out += buffer
            buffer.clear()
            return False
        if self._state is _State.CONTENT:
            at = buffer.find(self._delimiter)
            if at == -1:
                keep = len(self._delimiter) - 1
                if len(buffer) > keep:
                    out += self._content.feed(bytes(buffer[:-keep]))
                    del buffer[:-keep]
                return False
            out += self._content.feed(bytes(buffer[:at]))
            out += self._content.finish()
            self._part_ended()
            out += self._delimiter
            del buffer[: at + len(self._delimiter)]
            self._state = _State.AFTER_DELIMITER
            return True
        if self._state is _State.AFTER_DELIMITER:
            if len(buffer) < 2:
                return False
            if buffer[:2] == b"--":
                self._state = _State.END
                return True
            end = buffer.find(b"\r\n")
            if end == -1:
                if len(buffer) > MAX_PART_HEADERS:
                    raise BadRequest("The multipart body is malformed after a boundary.")
                return False
            out += buffer[: end + 2]
            del buffer[: end + 2]
            self._state = _State.HEADERS
            return True
        end = buffer.find(b"\r\n\r\n")
        if end == -1:
            if len(buffer) > MAX_PART_HEADERS:
                raise BadRequest(f"A multipart part's headers exceed {MAX_PART_HEADERS} bytes.")
            return False
        head = bytes(buffer[: end + 4])
        out += head
        del buffer[: end + 4]
        self._content = self._content_for(head)
        self._state = _State.CONTENT
        return True

    def _content_for(self, head: bytes) -> Content:
        headers = HeaderParser().parsestr(head.decode("latin-1"))
        name = headers.get_param("name", header="content-disposition")
        filename = headers.get_param("filename", header="content-disposition")
        if filename is not None:
            self.has_file = True
            if self.purpose is None:
                raise BadRequest(
                    "Send the 'purpose' field before the file: a batch file is checked as "
                    "it streams.",
                    param="purpose",
                )
            return self._batch_lines() if self.purpose == BATCH_PURPOSE else _Passed()
        if isinstance(name, str):
            field = _Field()
            self._field = (name, field)
            return field
        return _Passed()

    def _part_ended(self) -> None:
        if self._field is not None:
            name, field = self._field
            self._field = None
            if name == "purpose":
                self.purpose = field.value.decode("utf-8", "replace").strip()
