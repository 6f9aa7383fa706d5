"""A batch input file's lines checked and rewritten as the upload streams upstream.

Each line of a batch file is one request (`{"custom_id", "method", "url", "body"}`) whose
`body.model` the upstream will call: unchecked, a batch would reach any model the upstream
serves, whatever the key's allowlist. So each line's model must be one the key may use, for
the line's endpoint, and is rewritten to the upstream model of that route at the provider
that holds the file; a line that fails is a 400 naming the line, and the upload is cut off
before the upstream has the whole file (it never stores it).

Memory is one line: a line may be as long as a request body the gateway accepts directly
(`--max-body-bytes`, 5 MiB by default), since it is one such request, and a longer one is
refused the same way. A line is written anew (orjson), so a duplicate key in the client's
bytes cannot name a second model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway.errors import BadRequest, GatewayError

LineModel = Callable[[str, str], str]
"""(the line's url, its body's model) -> the upstream model; raises a GatewayError."""


class BatchLines:
    """Feed a batch file's bytes in order; each call returns the rewritten complete lines."""

    def __init__(self, model_for: LineModel, max_line_bytes: int) -> None:
        self._model_for = model_for
        self._max = max_line_bytes
        self._pending = bytearray()
        self._scanned = 0
        """Bytes of `_pending` known to hold no newline."""
        self.lines = 0

    def feed(self, chunk: bytes) -> bytes:
        self._pending += chunk
        out = bytearray()
        start = 0
        while (end := self._pending.find(b"\n", max(start, self._scanned))) != -1:
            out += self._rewrite(bytes(self._pending[start:end]))
            out += b"\n"
            start = end + 1
        del self._pending[:start]
        self._scanned = len(self._pending)
        if len(self._pending) > self._max:
            too_long = f"is longer than {self._max} bytes, the largest request accepted"
            raise self._refused(too_long, self.lines + 1)
        return bytes(out)

    def finish(self) -> bytes:
        """The last line when the file does not end with a newline."""
        rest, self._pending = bytes(self._pending), bytearray()
        return self._rewrite(rest) if rest.strip() else rest

    def _rewrite(self, raw: bytes) -> bytes:
        self.lines += 1
        if not raw.strip():
            return raw  # a blank line: the upstream's to judge, no model in it
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise self._refused("is not a JSON object") from None
        body = line.get("body") if isinstance(line, dict) else None
        if not isinstance(body, dict):
            raise self._refused("has no 'body' object")
        url, model = line.get("url"), body.get("model")
        if not isinstance(url, str):
            raise self._refused("has no 'url'")
        if not isinstance(model, str) or not model:
            raise self._refused("has no 'body.model'")
        try:
            upstream = self._model_for(url, model)
        except GatewayError as err:  # a 403, a 404 or a 400 alike: this line cannot be sent
            raise self._refused(f"cannot be sent: {err.message}") from None
        rewritten: dict[str, Any] = {**line, "body": {**body, "model": upstream}}
        return orjson.dumps(rewritten)

    def _refused(self, problem: str, line: int | None = None) -> BadRequest:
        return BadRequest(
            f"Line {line or self.lines} of the batch file {problem}. Nothing was stored: fix "
            "the line and upload the file again.",
            param="file",
        )
