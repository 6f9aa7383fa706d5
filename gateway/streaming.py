"""Ending a client's stream with an error event in its own protocol (never a silent cut)."""

from __future__ import annotations

import orjson

from gateway.errors import GatewayError, Protocol


def stream_error_event(protocol: Protocol, err: GatewayError) -> bytes:
    """An SSE event that each official SDK surfaces as an error when it reads it."""
    body = orjson.dumps(err.body(protocol))
    if protocol is Protocol.ANTHROPIC:
        return b"event: error\ndata: " + body + b"\n\n"
    return b"data: " + body + b"\n\n"
