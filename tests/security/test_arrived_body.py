"""A body that came whole with its head is taken straight from the connection's buffer
(front_door.take_arrived_body): exactly its bytes, leaving a pipelined request behind it
intact, and a body still on its way is read as before."""

from __future__ import annotations

import json
import re
import socket
import time

from tests.security.test_front_door import CHAT, OPENAI, Site, _head, _read_answer, site

__all__ = ["site"]  # the gateway fixture, shared


def test_pipelined_requests_are_each_answered(site: Site) -> None:
    """Two requests in one write: the first body's bytes end exactly where the second head
    begins, so taking too much or too little breaks the second."""
    one = _head(*OPENAI, len(CHAT), site.keys["alice"]) + CHAT.encode()
    with socket.create_connection(("127.0.0.1", site.port), timeout=3) as sock:
        sock.sendall(one + one)
        data = b""
        for _ in range(2):
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                assert chunk, f"the connection closed early (after {data!r})"
                data += chunk
            head, _, data = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 "), head
            length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)[1])  # type: ignore[index]
            while len(data) < length:
                data += sock.recv(65536)
            assert json.loads(data[:length])["object"] == "chat.completion"
            data = data[length:]


def test_a_body_in_two_writes_is_read_whole(site: Site) -> None:
    body = CHAT.encode()
    with socket.create_connection(("127.0.0.1", site.port), timeout=3) as sock:
        sock.sendall(_head(*OPENAI, len(body), site.keys["alice"]) + body[:10])
        time.sleep(0.05)  # the head is read with only part of its body in the buffer
        sock.sendall(body[10:])
        answer = _read_answer(sock, time.monotonic(), 3)
        assert answer.status == 200, answer.body
        assert site.upstream.requests[-1].body is not None
        assert site.upstream.requests[-1].body["messages"] == [{"role": "user", "content": "hi"}]
