"""The `model` field of a multipart/form-data body, found as the body streams in.

An upload (audio to transcribe, images to edit) is routed by its `model` field before it is
sent on; the scanner is fed the body chunk by chunk and says where that field's value lies
(its byte offsets), so the value can be replaced by each target's upstream model while the
rest of the body passes through unchanged. It holds only a window of the body (a part's
headers, or the model's value, and a delimiter's length), never a part's content.
"""

from __future__ import annotations

from email.parser import HeaderParser
from enum import Enum

from gateway.errors import BadRequest

MAX_PART_HEADERS = 16 * 1024
MAX_MODEL_BYTES = 1024


class _State(Enum):
    DELIMITER = "looking for the next delimiter"
    AFTER_DELIMITER = "a delimiter's CRLF, or the closing --"
    HEADERS = "a part's headers"
    END = "after the closing delimiter"


def boundary_of(content_type: str) -> bytes:
    """The boundary of a multipart/form-data content type; a 400 for any other type."""
    message = HeaderParser().parsestr(f"content-type: {content_type}\r\n\r\n")
    boundary = message.get_param("boundary")
    if message.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        raise BadRequest("This endpoint takes a multipart/form-data body with a boundary.")
    if not 1 <= len(boundary) <= 70:  # RFC 2046
        raise BadRequest("The multipart boundary must be 1 to 70 characters long.")
    return boundary.encode("latin-1")


class ModelFieldScanner:
    """Feed a multipart body's chunks in order; `span` and `model` are set once the `model`
    field's value has been read whole."""

    def __init__(self, boundary: bytes) -> None:
        self._delimiter = b"\r\n--" + boundary
        # The first delimiter has no CRLF before it: scan as if it had one.
        self._window = bytearray(b"\r\n")
        self._offset = -2
        """The body offset of the window's first byte."""
        self._state = _State.DELIMITER
        self._in_model = False
        self._value_at = 0
        self.span: tuple[int, int] | None = None
        """The body offsets [start, end) of the model field's value."""
        self.model: str | None = None

    @property
    def found(self) -> bool:
        return self.model is not None

    def feed(self, chunk: bytes) -> bool:
        """Scan one more chunk; True once the model field is found (feed no more after)."""
        if self.found:
            return True
        self._window += chunk
        while not self.found and self._step():
            pass
        if self._state is _State.END and not self.found:
            raise BadRequest("'model' is required.", param="model")
        return self.found

    def finish(self) -> None:
        """The body ended: a 400 when it named no model."""
        if not self.found:
            raise BadRequest("'model' is required.", param="model")

    def _drop(self, count: int) -> None:
        del self._window[:count]
        self._offset += count

    def _step(self) -> bool:
        """One transition; False when more bytes are needed."""
        window = self._window
        if self._state is _State.DELIMITER:
            at = window.find(self._delimiter)
            if at < 0:
                keep = len(self._delimiter) - 1
                if self._in_model:
                    if len(window) > MAX_MODEL_BYTES + keep:
                        raise BadRequest("'model' is too long.", param="model")
                elif len(window) > keep:
                    self._drop(len(window) - keep)
                return False
            if self._in_model:
                value = bytes(window[:at])
                try:
                    self.model = value.decode("utf-8")
                except UnicodeDecodeError:
                    raise BadRequest("'model' must be UTF-8 text.", param="model") from None
                self.span = (self._offset, self._offset + at)
                return False
            self._drop(at + len(self._delimiter))
            self._state = _State.AFTER_DELIMITER
            return True
        if self._state is _State.AFTER_DELIMITER:
            if len(window) < 2:
                return False
            if window[:2] == b"--":
                self._state = _State.END
                return False
            end = window.find(b"\r\n")  # RFC 2046 lets whitespace pad the delimiter's line
            if end < 0:
                if len(window) > 256:
                    raise BadRequest("The multipart body is malformed (a delimiter line).")
                return False
            self._drop(end + 2)
            self._state = _State.HEADERS
            return True
        if self._state is _State.HEADERS:
            end = window.find(b"\r\n\r\n")
            if end < 0:
                if len(window) > MAX_PART_HEADERS:
                    raise BadRequest("A multipart part's headers are too long.")
                return False
            self._in_model = _is_model_field(bytes(window[: end + 2]))
            self._drop(end + 4)
            self._state = _State.DELIMITER
            # Scanning for the delimiter starts at the part's content: its CRLF is the
            # delimiter's own, so an empty part is found too.
            return True
        return False


def _is_model_field(headers: bytes) -> bool:
    message = HeaderParser().parsestr(headers.decode("latin-1"))
    if message.get("content-disposition") is None:
        return False
    name = message.get_param("name", header="content-disposition")
    filename = message.get_param("filename", header="content-disposition")
    return name == "model" and filename is None
