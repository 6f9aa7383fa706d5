"""Same-protocol streams: forward upstream bytes unchanged, event by event, reading usage.

Only complete SSE events are forwarded (a partial event is of no use to a client), and only
events that mention usage are parsed, so the cost per chunk is one `rfind` and one `in`.
When the gateway itself asked an OpenAI upstream for `stream_options.include_usage`, the
extra usage-only chunk is dropped before the client sees it.
"""

from __future__ import annotations

import orjson

from gateway.errors import Protocol
from gateway.protocols import ADAPTERS
from gateway.translate.sse import MAX_EVENT_BYTES, event_too_long
from gateway.usage.tokens import Usage
from gateway.vocabulary import Op

_USAGE_MARK = b'"usage'  # "usage" (OpenAI, Anthropic) and "usageMetadata" (Gemini)


def _complete_end(data: bytes | bytearray, start: int = 0) -> int:
    """Index just past the last complete SSE event in `data` (ending at or after `start`),
    or 0 if none is complete."""
    lf = data.rfind(b"\n\n", start)
    crlf = data.rfind(b"\r\n\r\n", start)
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)


def _event_data(event: bytes) -> bytes:
    lines = [line[5:].lstrip() for line in event.splitlines() if line.startswith(b"data:")]
    return b"\n".join(lines)


class PassthroughStream:
    def __init__(
        self,
        family: Protocol,
        hide_usage_chunk: bool,
        responses: bool = False,
        usage: Usage | None = None,
    ) -> None:
        self.family = family
        self.hide_usage_chunk = hide_usage_chunk
        self.usage = usage if usage is not None else Usage()
        """Filled in place as usage events go by."""
        self.ended = False
        """The answer's closing event was seen (its usage is final)."""
        self.events = 0
        """Complete events relayed: a floor for the tokens of an answer cut short."""
        adapter = ADAPTERS[family]  # the end marks and usage reader of its protocol
        self._end_marks = adapter.end_marks(Op.RESPONSES if responses else Op.CHAT)
        self._read_usage_of = adapter.read_usage
        self._pending = bytearray()

    def feed(self, chunk: bytes) -> bytes:
        """Bytes to forward now: every event completed by this chunk."""
        data: bytes | bytearray = chunk
        seam = 0
        if self._pending:
            # Only the new bytes, and the 3 before them, can end an event: an event that
            # comes in many chunks costs time linear in its length, not quadratic.
            seam = max(len(self._pending) - 3, 0)
            self._pending += chunk
            data = self._pending
        end = _complete_end(data, seam)
        if end == 0:
            if data is chunk:
                self._pending += chunk
            if len(self._pending) > MAX_EVENT_BYTES:
                raise event_too_long()
            return b""
        if data is chunk and end == len(chunk):
            ready = chunk  # the common case: whole events, nothing pending; no copies
        else:
            ready = bytes(data[:end])
            self._pending = bytearray(data[end:])
        self.events += ready.count(b"\n\n")
        if _USAGE_MARK in ready:
            ready = self._read_usage(ready)
        for mark in self._end_marks:
            if mark in ready:
                self.ended = True
        return ready

    def finish(self) -> bytes:
        """Whatever is left when the upstream closed (a final event without blank line)."""
        rest, self._pending = bytes(self._pending), bytearray()
        if rest and _USAGE_MARK in rest:
            rest = self._read_usage(rest)
        return rest

    def _read_usage(self, block: bytes) -> bytes:
        kept: list[bytes] = []
        dropped = False
        for event in block.replace(b"\r\n", b"\n").split(b"\n\n"):
            if not event:
                continue
            if _USAGE_MARK in event:
                try:
                    parsed = orjson.loads(_event_data(event))
                except orjson.JSONDecodeError:
                    parsed = None
                self._read_usage_of(parsed, self.usage)
                if self._is_hidden_usage_chunk(parsed):
                    dropped = True
                    continue
            kept.append(event)
        if not dropped and b"\r\n" not in block:
            return block
        return b"".join(event + b"\n\n" for event in kept)

    def _is_hidden_usage_chunk(self, parsed: object) -> bool:
        return (
            self.hide_usage_chunk
            and isinstance(parsed, dict)
            and parsed.get("choices") == []
            and parsed.get("usage") is not None
        )

    def usage_of_unfinished(self, prompt_estimate: int) -> None:
        """An answer cut short (client gone, upstream broken) reported no final usage:
        count the prompt as estimated and one token per event relayed, never less than
        what the upstream did report."""
        if self.ended:
            return
        self.usage.prompt_tokens = self.usage.prompt_tokens or prompt_estimate
        self.usage.completion_tokens = max(self.usage.completion_tokens, self.events)
