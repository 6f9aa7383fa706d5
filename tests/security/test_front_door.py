"""The front door (issue 12): keys before bodies, bounded bodies and connections, clean heads.

Against the real server over raw sockets, so that nothing normalises what is sent: a head may
claim a body that never comes, trickle it, carry a bare LF inside a header value, or be one
connection too many. Each refusal comes promptly, in the caller's protocol.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.front_door import head_is_clean
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, standard_policy

PROMPTLY_S = 1.0
BODY_TIMEOUT_S = 1.0
MAX_BODY = 5 * 1024 * 1024  # the default --max-body-bytes
CHAT = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})

# (path, extra head lines) per protocol
OPENAI = ("/v1/chat/completions", "")
ANTHROPIC = ("/v1/messages", "anthropic-version: 2023-06-01\r\n")
GEMINI = ("/v1beta/models/gpt-4o-mini:generateContent", "")
PROTOCOLS = {"openai": OPENAI, "anthropic": ANTHROPIC, "gemini": GEMINI}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    seconds: float
    """From the end of what was sent to the whole answer."""
    closed: bool
    """Whether the gateway closed the connection after the answer."""


def _read_answer(sock: socket.socket, started: float, timeout: float) -> Answer:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed without an answer (got {data!r})"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    while len(rest) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "the connection closed inside the answer"
        rest += chunk
    seconds = time.monotonic() - started
    sock.settimeout(0.5)
    try:
        closed = sock.recv(1) == b""
    except TimeoutError:
        closed = False
    except ConnectionResetError:
        closed = True
    return Answer(int(status_line.split()[1]), headers, json.loads(rest), seconds, closed)


def _send(port: int, data: bytes, timeout: float = 3.0) -> Answer:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return _read_answer(sock, time.monotonic(), timeout)


def _head(path: str, extra: str, length: int | None, key: str | None = None) -> bytes:
    lines = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    if key is not None:
        lines += f"Authorization: Bearer {key}\r\nx-api-key: {key}\r\nx-goog-api-key: {key}\r\n"
    if length is not None:
        lines += f"Content-Length: {length}\r\n"
    return (lines + extra + "\r\n").encode()


def _kind(answer: Answer, protocol: str) -> str:
    """The error's type as the protocol names it (its shape checked on the way)."""
    body = answer.body
    if protocol == "anthropic":
        assert body["type"] == "error"
        return str(body["error"]["type"])
    if protocol == "gemini":
        assert body["error"]["code"] == answer.status
        return str(body["error"]["status"])
    return str(body["error"]["code"])


class Site:
    def __init__(self, upstream: FakeUpstream, gateway: GatewayProcess, keys: dict[str, str]):
        self.upstream, self.gateway, self.keys = upstream, gateway, keys
        self.port = gateway.port


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    upstream = FakeUpstream().start()
    root: Path = tmp_path_factory.mktemp("front-door")
    repo = PolicyRepo(root / "policy")
    keys = standard_policy(repo, upstream.url)
    gateway = GatewayProcess(
        repo.path,
        root / "state",
        "--body-timeout",
        str(BODY_TIMEOUT_S),
        "--max-inflight-body-mb",
        "5",
    )
    try:
        yield Site(upstream, gateway.start(), keys)
    finally:
        gateway.stop()
        upstream.stop()


# keys before bodies --------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("key", [None, "mg-not-a-key-of-this-gateway"], ids=["missing", "unknown"])
def test_a_refused_key_is_answered_without_reading_the_body(
    site: Site, protocol: str, key: str | None
) -> None:
    """The head claims 5 MiB that never come: the 401 arrives at once, and the door closes."""
    path, extra = PROTOCOLS[protocol]
    answer = _send(site.port, _head(path, extra, MAX_BODY, key), timeout=PROMPTLY_S)
    assert answer.status == 401
    assert _kind(answer, protocol) in ("invalid_api_key", "authentication_error", "UNAUTHENTICATED")
    assert answer.seconds < PROMPTLY_S
    assert answer.closed
    assert answer.headers["connection"] == "close"


def test_an_authorised_request_still_works(site: Site) -> None:
    client = openai.OpenAI(
        base_url=site.gateway.url + "/v1", api_key=site.keys["alice"], max_retries=0
    )
    for _ in range(2):  # the second on the SDK's kept-alive connection
        completion = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        assert completion.choices[0].message.content == "Hello from the fake upstream."
    assert site.upstream.requests[-1].body is not None
    assert site.upstream.requests[-1].body["messages"] == [{"role": "user", "content": "hi"}]


def test_a_body_read_in_full_keeps_the_connection(site: Site) -> None:
    with socket.create_connection(("127.0.0.1", site.port), timeout=3) as sock:
        for _ in range(2):
            sock.sendall(_head(*OPENAI, len(CHAT), site.keys["alice"]) + CHAT.encode())
            answer = _read_answer(sock, time.monotonic(), 3)
            assert answer.status == 200
            assert not answer.closed


# bounded bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_oversize_body_is_413_before_it_is_read(site: Site, protocol: str) -> None:
    path, extra = PROTOCOLS[protocol]
    head = _head(path, extra, MAX_BODY + 1, site.keys["alice"])
    answer = _send(site.port, head, timeout=PROMPTLY_S)
    assert answer.status == 413
    assert _kind(answer, protocol) in ("request_too_large", "INVALID_ARGUMENT")
    assert "Send a smaller request" in json.dumps(answer.body)
    assert answer.closed


def test_a_chunked_body_is_413_once_it_grows_past_the_limit(site: Site) -> None:
    head = _head(*OPENAI, None, site.keys["alice"])
    head = head[:-2] + b"Transfer-Encoding: chunked\r\n\r\n"
    mib = 1024 * 1024
    chunks = (b"%x\r\n" % mib + b" " * mib + b"\r\n") * (MAX_BODY // mib)
    with socket.create_connection(("127.0.0.1", site.port), timeout=3) as sock:
        sock.sendall(head + chunks + b"1\r\n")  # the announced byte would pass the limit
        started = time.monotonic()
        answer = _read_answer(sock, started, PROMPTLY_S)
    assert answer.status == 413
    assert answer.closed


def test_a_chunked_body_within_the_limit_is_served(site: Site) -> None:
    head = _head(*OPENAI, None, site.keys["alice"])[:-2] + b"Transfer-Encoding: chunked\r\n\r\n"
    half = len(CHAT) // 2
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(p), p) for p in (CHAT[:half].encode(), CHAT[half:].encode())
    )
    answer = _send(site.port, head + chunks + b"0\r\n\r\n")
    assert answer.status == 200


def test_a_trickled_body_is_dropped_at_the_body_timeout(site: Site) -> None:
    """Slowloris: a byte every 0.2 s keeps the connection busy, never the deadline away."""
    head = _head(*ANTHROPIC, 1000, site.keys["alice"])
    with socket.create_connection(("127.0.0.1", site.port), timeout=3) as sock:
        sock.sendall(head)
        started = time.monotonic()
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(0.2):
                try:
                    sock.send(b" ")
                except OSError:
                    return

        threading.Thread(target=trickle, daemon=True).start()
        try:
            answer = _read_answer(sock, started, BODY_TIMEOUT_S + 1.5)
        finally:
            stop.set()
    assert answer.status == 408
    assert answer.body["error"]["type"] == "timeout_error"
    assert BODY_TIMEOUT_S - 0.1 < answer.seconds < BODY_TIMEOUT_S + 1.0
    assert answer.closed


def test_bodies_over_the_in_flight_budget_get_503_with_retry_after(site: Site) -> None:
    """One request holds (nearly) all of the 5 MiB budget while its body arrives."""
    key = site.keys["alice"]
    with socket.create_connection(("127.0.0.1", site.port), timeout=3) as holder:
        holder.sendall(_head(*OPENAI, MAX_BODY - 1000, key) + b"{")
        time.sleep(0.2)  # its body is being read
        answer = _send(site.port, _head(*ANTHROPIC, 2000, key), timeout=PROMPTLY_S)
        assert answer.status == 503
        assert answer.body["error"]["type"] == "overloaded_error"
        assert answer.headers["retry-after"] == "1"
        assert answer.closed
    # The holder's bytes are given back when it ends (here: its client left).
    deadline = time.monotonic() + BODY_TIMEOUT_S + 2
    while time.monotonic() < deadline:
        answer = _send(site.port, _head(*OPENAI, len(CHAT), key) + CHAT.encode())
        if answer.status == 200:
            break
        time.sleep(0.1)
    assert answer.status == 200


# clean heads ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("bad", ["\n", "\r", "\x00"], ids=["bare-LF", "bare-CR", "NUL"])
def test_a_control_character_in_a_header_value_is_400(site: Site, protocol: str, bad: str) -> None:
    """Otherwise a well-formed, authorised request: without the check, it would be served."""
    path, extra = PROTOCOLS[protocol]
    body = json.dumps({"model": "gpt-4o-mini", "contents": [], "messages": [], "max_tokens": 1})
    value = f"tools{bad}X-Smuggled: 1"
    head = _head(path, extra + f"anthropic-beta: {value}\r\n", len(body), site.keys["alice"])
    sent_upstream = len(site.upstream.requests)
    answer = _send(site.port, head + body.encode(), timeout=PROMPTLY_S)
    assert answer.status == 400
    assert _kind(answer, protocol) in (
        "invalid_header",
        "invalid_request_error",
        "INVALID_ARGUMENT",
    )
    assert "bare CR or LF" in json.dumps(answer.body)
    assert answer.closed
    assert len(site.upstream.requests) == sent_upstream


def test_a_tab_in_a_header_value_is_fine(site: Site) -> None:
    head = _head(*OPENAI, len(CHAT), site.keys["alice"])
    head = head[:-2] + b"x-trace: one\ttwo\r\n\r\n"
    answer = _send(site.port, head + CHAT.encode())
    assert answer.status == 200


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=8))
def test_a_head_is_clean_when_its_lines_hold_no_cr_lf_or_nul(lines: list[bytes]) -> None:
    head = b"\r\n".join(lines)
    as_sanic_splits = head.split(b"\r\n")
    clean = not any(b in line for line in as_sanic_splits for b in (b"\r", b"\n", b"\x00"))
    assert head_is_clean(head, len(as_sanic_splits) - 1) is clean


# bounded connections -------------------------------------------------------------------

MAX_CONNECTIONS = 3


@pytest.fixture
def bounded(tmp_path: Path) -> Iterator[tuple[GatewayProcess, str]]:
    upstream = FakeUpstream().start()
    repo = PolicyRepo(tmp_path / "policy")
    admin = standard_policy(repo, upstream.url)["admin"]
    gateway = GatewayProcess(
        repo.path, tmp_path / "state", "--max-connections", str(MAX_CONNECTIONS)
    )
    try:
        yield gateway.start(), admin
    finally:
        gateway.stop()
        upstream.stop()


_HEALTH = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _served(port: int) -> socket.socket | None:
    """A connection that got an answer (and stays open), or None when it was refused."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        sock.sendall(_HEALTH)
        data = sock.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        data = b""
    if data.startswith(b"HTTP/1.1 200"):
        return sock
    sock.close()
    return None


def _served_soon(port: int) -> socket.socket:
    """Connections the gateway has not yet seen close may still count for a moment."""
    deadline = time.monotonic() + 3
    while (sock := _served(port)) is None:
        assert time.monotonic() < deadline, "no connection was served"
        time.sleep(0.05)
    return sock


def test_connections_over_the_bound_are_closed_on_accept(
    bounded: tuple[GatewayProcess, str],
) -> None:
    gateway, admin = bounded
    held = [_served_soon(gateway.port) for _ in range(MAX_CONNECTIONS)]
    try:
        for _ in range(2):
            assert _served(gateway.port) is None
        held.pop().close()
        held.append(_served_soon(gateway.port))  # a place came free
    finally:
        for sock in held:
            sock.close()
    # Operators see the refusals: counted, and said once (not once per connection).
    time.sleep(0.2)  # the closed connections leave the worker's set
    metrics = httpx.get(gateway.url + "/metrics", headers={"authorization": f"Bearer {admin}"})
    refused = re.search(r"^modelgate_refused_connections_total (\S+)$", metrics.text, re.M)
    assert refused is not None and float(refused.group(1)) >= 2
    said = [
        line for line in gateway.logs().splitlines() if "refused" in line and "--max-co" in line
    ]
    assert len(said) == 1 and f"--max-connections ({MAX_CONNECTIONS})" in said[0]


# heads: their size, and a new connection's first -----------------------------------------

HEAD_LIMIT = 8192  # Sanic's REQUEST_MAX_HEADER_SIZE, which the gateway keeps


def test_a_head_over_the_size_limit_is_431_and_names_the_headers(site: Site) -> None:
    filler = f"X-Filler: {'a' * HEAD_LIMIT}\r\n"
    head = _head(*OPENAI[:1], filler, len(CHAT), site.keys["alice"])
    answer = _send(site.port, head + CHAT.encode())
    assert answer.status == 431
    assert answer.body["error"]["code"] == "request_header_fields_too_large"
    message = answer.body["error"]["message"]
    assert "headers" in message and "body" not in message
    assert answer.closed


def test_a_connection_that_sends_nothing_is_closed_at_the_request_timeout(site: Site) -> None:
    """Not after the keep-alive timeout (75 s): idle sockets would hold --max-connections."""
    with socket.create_connection(("127.0.0.1", site.port), timeout=BODY_TIMEOUT_S + 2) as sock:
        started = time.monotonic()
        with contextlib.suppress(ConnectionResetError):  # closed, unanswered
            assert sock.recv(1) == b""
        assert time.monotonic() - started < BODY_TIMEOUT_S + 0.5


def test_a_first_head_is_due_within_the_request_timeout_of_the_accept(site: Site) -> None:
    """Not of its first byte: a client cannot wait first and then trickle."""
    with socket.create_connection(("127.0.0.1", site.port), timeout=3) as sock:
        accepted = time.monotonic()
        time.sleep(BODY_TIMEOUT_S * 0.6)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n")
        answer = _read_answer(sock, accepted, 3)
    assert answer.status == 408
    assert answer.body["error"]["code"] == "request_timeout"
    assert answer.seconds < BODY_TIMEOUT_S * 1.4  # from its first byte it would be 1.6


def test_idling_between_requests_keeps_the_keep_alive_timeout(site: Site) -> None:
    health = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", site.port), timeout=3) as sock:
        sock.sendall(health)
        assert _read_answer(sock, time.monotonic(), 3).status == 200
        time.sleep(BODY_TIMEOUT_S + 0.5)  # past the first head's deadline
        sock.sendall(health)
        assert _read_answer(sock, time.monotonic(), 3).status == 200
