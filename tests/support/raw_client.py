"""A raw-socket HTTP/1.1 client: the request goes to the gateway exactly as a test writes it
(an HTTP library would refuse or normalise hostile header bytes and paths)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    status: int
    head: bytes
    body: bytes
    elapsed_s: float
    """From connecting to the last byte of the answer (a stream's end included)."""

    @property
    def text(self) -> str:
        return (self.head + b"\r\n\r\n" + self.body).decode("utf-8", "replace")

    def json(self) -> Any:
        """The body's JSON ({} for an empty body)."""
        return json.loads(self.body) if self.body else {}


def send(
    port: int,
    method: str,
    target: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
    *,
    raw_lines: bytes = b"",
    timeout_s: float = 10,
) -> Reply:
    """One request on a connection of its own; `raw_lines` are head lines sent as they are,
    after `headers`."""
    head = b"%s %s HTTP/1.1\r\nhost: 127.0.0.1:%d\r\n" % (method.encode(), target.encode(), port)
    # Before the test's headers: a CRLF in one of them must not hide that this is the last.
    head += b"connection: close\r\ncontent-type: application/json\r\n"
    head += b"content-length: %d\r\n" % len(body)
    head += b"".join(b"%s: %s\r\n" % pair for pair in headers) + raw_lines + b"\r\n"
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(head + body)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    elapsed = time.perf_counter() - started
    reply_head, _, rest = bytes(received).partition(b"\r\n\r\n")
    status = int(reply_head.split(b" ", 2)[1]) if reply_head else 0
    chunked = b"transfer-encoding: chunked" in reply_head.lower()
    return Reply(status, reply_head, _dechunk(rest) if chunked else rest, elapsed)


def post(
    port: int,
    target: str,
    headers: Sequence[tuple[bytes, bytes]],
    body: bytes,
    timeout_s: float = 10,
) -> Reply:
    return send(port, "POST", target, headers, body, timeout_s=timeout_s)


def post_json(
    port: int,
    target: str,
    headers: Sequence[tuple[bytes, bytes]],
    value: Any,
    *,
    raw_lines: bytes = b"",
    timeout_s: float = 10,
) -> Reply:
    return send(
        port,
        "POST",
        target,
        headers,
        json.dumps(value).encode(),
        raw_lines=raw_lines,
        timeout_s=timeout_s,
    )


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)
