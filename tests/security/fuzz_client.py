"""A raw-socket HTTP/1.1 client: header bytes go to the gateway exactly as a test writes them
(an HTTP library would refuse or normalise the hostile ones)."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass


@dataclass
class Reply:
    status: int
    head: bytes
    body: bytes
    elapsed_s: float
    """From the first byte sent to the last byte of the answer (a stream's end included)."""

    @property
    def text(self) -> str:
        return (self.head + b"\r\n\r\n" + self.body).decode("utf-8", "replace")


def post(
    port: int,
    target: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    timeout_s: float = 10,
) -> Reply:
    head = b"POST %s HTTP/1.1\r\nhost: 127.0.0.1:%d\r\n" % (target.encode(), port)
    # Before the test's headers: a CRLF in one of them must not hide that this is the last.
    head += b"connection: close\r\ncontent-type: application/json\r\n"
    head += b"content-length: %d\r\n" % len(body)
    head += b"".join(b"%s: %s\r\n" % pair for pair in headers)
    head += b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        started = time.perf_counter()
        sock.sendall(head + body)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
        elapsed = time.perf_counter() - started
    reply_head, _, rest = bytes(received).partition(b"\r\n\r\n")
    status = int(reply_head.split(b" ", 2)[1]) if reply_head else 0
    chunked = b"transfer-encoding: chunked" in reply_head.lower()
    return Reply(status, reply_head, _dechunk(rest) if chunked else rest, elapsed)


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
