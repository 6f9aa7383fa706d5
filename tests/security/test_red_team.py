"""Red team (issue 12): what an ordinary client, or a client with no key, tried after hardening.

Against the real server over raw sockets, with a fake upstream that parses JSON as some real
upstreams do (the first of duplicate keys wins) and records each body byte for byte. Each
test is one way in that was found open; what held up is listed in the issue's closing note.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.errors import Protocol, UpstreamFailed
from gateway.request.passthrough import MAX_EVENT_BYTES, PassthroughStream
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret

TIMEOUT_S = 3.0


class LenientUpstream(FakeUpstream):
    """The fake upstream, also keeping each body as it arrived, and quoting an invalid value
    back in its 400, as OpenAI and Gemini do ("Invalid value: 'x'. Supported values are...")."""

    def __init__(self) -> None:
        super().__init__()
        self.raw_bodies: list[bytes] = []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()  # aiohttp keeps it for the next read
        self.raw_bodies.append(raw)
        body = json.loads(raw) if raw else {}
        invalid = _invalid_value(body)
        if invalid is not None:
            message = f"Invalid value: '{invalid}'. Supported values are: 'text' and 'json_object'."
            if "/models/" in request.path:  # Gemini
                error = {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}
            else:
                error = {"message": message, "type": "invalid_request_error", "code": None}
            return web.json_response({"error": error}, status=400)
        return await super()._handle(request)


def _invalid_value(body: dict[str, Any]) -> str | None:
    if isinstance(body.get("response_format"), dict):
        value = body["response_format"].get("type")
    elif isinstance(body.get("generationConfig"), dict):
        value = body["generationConfig"].get("responseMimeType")
    else:
        return None
    return None if value in ("text", "json_object", "text/plain") else str(value)


def first_key_wins(raw: bytes) -> dict[str, Any]:
    """How a parser that keeps the first of duplicate keys reads a body (simdjson's
    on-demand lookups do)."""

    def keep_first(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in pairs:
            out.setdefault(name, value)
        return out

    parsed: dict[str, Any] = json.loads(raw, object_pairs_hook=keep_first)
    return parsed


class Site:
    def __init__(self, upstream: LenientUpstream, gateway: GatewayProcess, key: str):
        self.upstream, self.gateway, self.key = upstream, gateway, key
        self.port = gateway.port


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Routes named as their upstream models (so bodies may go on as they came); the key may
    use `gpt-4o-mini` and `claude-haiku`, not `gpt-secret` or `claude-opus`. The `echo-*`
    routes have providers of their own, whose credentials a test may try to bench."""
    upstream = LenientUpstream().start()
    root: Path = tmp_path_factory.mktemp("red-team")
    repo = PolicyRepo(root / "policy")
    key = new_secret()
    repo.write(
        "providers.yaml",
        f"""
        providers:
          fake:
            type: openai-compatible
            base_url: {upstream.url}/v1
            credentials: [env:FAKE_UPSTREAM_KEY]
          claude:
            type: anthropic
            base_url: {upstream.url}
            credentials: [env:FAKE_UPSTREAM_KEY]
          echo-openai:
            type: openai-compatible
            base_url: {upstream.url}/v1
            credentials: [env:FAKE_UPSTREAM_KEY]
          echo-gemini:
            type: gemini
            base_url: {upstream.url}
            credentials: [env:FAKE_UPSTREAM_KEY]
        """,
    )
    repo.write(
        "routes.yaml",
        """
        routes:
          gpt-4o-mini: {targets: [fake/gpt-4o-mini]}
          claude-haiku: {targets: [claude/claude-haiku]}
          gpt-secret: {targets: [fake/gpt-secret]}
          claude-opus: {targets: [claude/claude-opus]}
          echo-gpt: {targets: [echo-openai/gpt-4o-mini]}
          echo-gemini: {targets: [echo-gemini/gemini-flash]}
        """,
    )
    repo.write("limits.yaml", "default: {}\ntiers: {}\n")
    repo.write(
        "keys.yaml",
        f"""
        keys:
          - id: mallory
            hash: {hash_of(key)}
            models: [gpt-4o-mini, claude-haiku, echo-gpt, echo-gemini]
        """,
    )
    repo.commit("red team policy")
    gateway = GatewayProcess(repo.path, root / "state")
    try:
        yield Site(upstream, gateway.start(), key)
    finally:
        gateway.stop()
        upstream.stop()


def exchange(port: int, data: bytes, timeout: float = TIMEOUT_S, *, one: bool = False) -> bytes:
    """Send `data`; everything the gateway answers until it closes or goes quiet (0.5 s),
    or, with `one`, until one whole answer arrived (for tests that look at no second one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.settimeout(0.5)
        got = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (one and _one_whole_answer(got)):
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if got:
                    break
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        return got


def _one_whole_answer(got: bytes) -> bool:
    """Whether `got` holds a whole HTTP/1.1 answer: its head, then its Content-Length of body
    or the last chunk of a chunked one."""
    head, sep, body = got.partition(b"\r\n\r\n")
    if not sep:
        return False
    fields = dict(
        (name.strip().lower(), value.strip())
        for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
    )
    if fields.get(b"transfer-encoding") == b"chunked":
        return body.endswith(b"0\r\n\r\n")
    return len(body) >= int(fields.get(b"content-length", b"0"))


def post(path: str, body: bytes, key: str | None, extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    if key is not None:
        head += f"Authorization: Bearer {key}\r\nx-api-key: {key}\r\n"
    head += f"Content-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


# duplicate JSON keys: the gateway and the upstream must read the same model -------------

CHAT_PATHS = {
    "openai": ("/v1/chat/completions", ""),
    "anthropic": ("/v1/messages", "anthropic-version: 2023-06-01\r\n"),
}
ALLOWED = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku"}
FORBIDDEN = {"openai": "gpt-secret", "anthropic": "claude-opus"}


@pytest.mark.parametrize("protocol", CHAT_PATHS)
@pytest.mark.parametrize("spelling", ['"model"', '"mod\\u0065l"'], ids=["plain", "escaped"])
def test_a_duplicate_model_key_cannot_reach_a_model_outside_the_allowlist(
    site: Site, protocol: str, spelling: str
) -> None:
    """`{"model": forbidden, "model": allowed}`: the gateway checks the last, so the upstream
    must not be handed a body in which another parser finds the first."""
    path, extra = CHAT_PATHS[protocol]
    body = (
        f'{{{spelling}: "{FORBIDDEN[protocol]}", "model": "{ALLOWED[protocol]}", '
        '"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}'
    ).encode()
    site.upstream.raw_bodies.clear()
    answer = exchange(site.port, post(path, body, site.key, extra), one=True)
    assert status_of(answer) == 200, answer
    (sent,) = site.upstream.raw_bodies
    assert first_key_wins(sent)["model"] == ALLOWED[protocol]


@pytest.mark.parametrize("first", [True, False], ids=["stream-first", "stream-last"])
def test_a_duplicate_stream_key_cannot_split_what_the_gateway_and_upstream_think(
    site: Site, first: bool
) -> None:
    """A stream the gateway takes for a single answer (or the other way round) goes
    unmetered: the gateway finds no usage in what it relays."""
    streams = ("true", "false") if first else ("false", "true")
    body = (
        f'{{"model": "gpt-4o-mini", "stream": {streams[0]}, "stream": {streams[1]}, '
        '"stream_options": {"include_usage": true}, '
        '"messages": [{"role": "user", "content": "hi"}]}'
    ).encode()
    site.upstream.raw_bodies.clear()
    exchange(site.port, post("/v1/chat/completions", body, site.key), one=True)
    (sent,) = site.upstream.raw_bodies
    assert first_key_wins(sent)["stream"] is json.loads(body)["stream"]


# the front door: where a request ends, and what a refused one is told ----------------


SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
FRAMING = {
    # Python's int() reads '٢' (Arabic-Indic two) as 2; a proxy reads no length at all.
    "unicode-digit-length": "Content-Length: \u0662\r\n",
    # Sanic takes 'content-length ' for another header and reads no body; a lenient proxy
    # reads a length (and the other way round for Transfer-Encoding).
    "space-before-colon": "Content-Length : 2\r\n",
    "chunked-space-before-colon": "Content-Length: 2\r\nTransfer-Encoding : chunked\r\n",
    "folded-line": "Content-Length: 2\r\nX-Note: a\r\n Transfer-Encoding: chunked\r\n",
}


@pytest.mark.parametrize("framing", FRAMING)
def test_a_head_a_proxy_could_frame_otherwise_is_refused(site: Site, framing: str) -> None:
    """Where a proxy in front and Sanic disagree on where a request ends, the rest of it
    (here the bytes of a second request) becomes a request of its own: so one 400, then
    the door closes (RFC 9112 5.1 and 6.3)."""
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {site.key}\r\n{FRAMING[framing]}\r\n"
    ).encode()
    answer = exchange(site.port, head + b"{}" + SMUGGLED)
    assert status_of(answer) == 400, answer
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    assert b"invalid_header" in answer


@pytest.mark.parametrize("key", [None, "mg-not-a-key-of-this-gateway"], ids=["missing", "unknown"])
def test_a_refused_key_gets_no_100_continue(site: Site, key: str | None) -> None:
    """`Expect: 100-continue` (curl sends it for bodies over 1 MiB) asks leave to send the
    body. A refused key must not be given it: the client would send its body into a
    connection that is being closed, and may see a reset instead of the 401."""
    head = post("/v1/chat/completions", b"", key, "Expect: 100-continue\r\n")
    head = head.replace(b"Content-Length: 0", b"Content-Length: 2000000")
    answer = exchange(site.port, head)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]


HEAD_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def quick_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway whose request heads and bodies must arrive within a second."""
    root: Path = tmp_path_factory.mktemp("red-team-slow")
    repo = PolicyRepo(root / "policy")
    repo.write("providers.yaml", "providers: {}\n")
    repo.write("routes.yaml", "routes: {}\n")
    repo.write("limits.yaml", "default: {}\ntiers: {}\n")
    repo.write("keys.yaml", f"keys:\n  - id: k\n    hash: {hash_of(new_secret())}\n")
    repo.commit("no routes")
    gateway = GatewayProcess(repo.path, root / "state", "--body-timeout", str(HEAD_TIMEOUT_S))
    try:
        yield gateway.start()
    finally:
        gateway.stop()


def test_a_trickled_head_is_dropped_at_the_timeout(quick_gateway: GatewayProcess) -> None:
    """Slowloris on the head, with no key: Sanic's request timeout restarts with every byte,
    so a byte every 0.3 s held a connection (one of --max-connections) for as long as an
    8 KiB head takes: days. The whole head must arrive within the timeout."""
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 100
    limit = HEAD_TIMEOUT_S + 1.5
    with socket.create_connection(("127.0.0.1", quick_gateway.port), timeout=0.3) as sock:
        started = time.monotonic()
        answer, ended = b"", False
        for byte in head:
            if time.monotonic() - started > limit:
                break
            try:
                sock.send(bytes([byte]))
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                pass
            ended = True  # an answer, or the connection closed
            break
    assert ended, f"the head was still being read after {limit} s"
    assert answer.startswith(b"HTTP/1.1 408 "), answer


# an upstream quoting the client must not bench the operator's credential ---------------

QUOTED = {
    "openai": (
        "/v1/chat/completions",
        {"model": "echo-gpt", "messages": [{"role": "user", "content": "hi"}]},
        "response_format",
        {"type": "{mark}"},
    ),
    "gemini": (
        "/v1beta/models/echo-gemini:generateContent",
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        "generationConfig",
        {"responseMimeType": "{mark}"},
    ),
}


@pytest.mark.parametrize("protocol", QUOTED)
@pytest.mark.parametrize("mark", ["API_KEY_INVALID", "insufficient_quota", "RESOURCE_EXHAUSTED"])
def test_an_upstream_error_quoting_the_client_does_not_bench_the_credential(
    site: Site, protocol: str, mark: str
) -> None:
    """The upstream's own error codes say a credential is bad or out of quota; words in its
    message may be the client's. One request must not take the operator's credential out of
    the pool (API_KEY_INVALID: until the policy changes) or cool it, for every client."""
    path, body, field, value = QUOTED[protocol]
    bad = {**body, field: json.loads(json.dumps(value).replace("{mark}", mark))}
    answer = exchange(site.port, post(path, json.dumps(bad).encode(), site.key), one=True)
    assert status_of(answer) == 400, answer  # the client's own mistake, passed back
    answer = exchange(site.port, post(path, json.dumps(body).encode(), site.key), one=True)
    assert status_of(answer) == 200, answer  # and the next caller is served


# the one generation-free POST route: /admin/api/sync ------------------------------------


def _trickle_for_answer(sock: socket.socket, limit: float) -> bytes:
    """Send a byte every 0.3 s until the gateway answers or closes; b"" after `limit` s."""
    sock.settimeout(0.3)
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            sock.send(b" ")
            return sock.recv(65536) or b"<closed>"
        except TimeoutError:
            continue
        except OSError:
            return b"<closed>"
    return b""


def test_a_sync_without_a_token_is_refused_before_its_body(
    quick_gateway: GatewayProcess,
) -> None:
    """Sanic read a 5 MiB body into memory before the handler looked for a token: 40
    connections with no key held 200 MB, and 1024 of them would hold 5 GiB."""
    head = b"POST /admin/api/sync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000000\r\n\r\n"
    with socket.create_connection(("127.0.0.1", quick_gateway.port), timeout=1) as sock:
        sock.sendall(head + b" " * 1000)
        answer = _trickle_for_answer(sock, HEAD_TIMEOUT_S + 1.5)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]


def test_a_webhook_body_is_read_within_the_body_timeout(quick_gateway: GatewayProcess) -> None:
    """A webhook's proof covers its body, so that body is read before anything is proven:
    within the body timeout and the in-flight budget, as a generation request's is."""
    head = (
        b"POST /admin/api/sync HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"X-Hub-Signature-256: sha256=00\r\nContent-Length: 5000000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", quick_gateway.port), timeout=1) as sock:
        sock.sendall(head + b" " * 1000)
        answer = _trickle_for_answer(sock, HEAD_TIMEOUT_S + 1.5)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]


# an upstream's endless event -------------------------------------------------------------


def test_an_event_in_many_chunks_costs_linear_time_and_is_bounded() -> None:
    """Each chunk of an unfinished event was joined to all of it and searched again: an
    upstream sending 50 MB with no blank line held the worker's loop for 22 s."""
    scanner = PassthroughStream(Protocol.OPENAI, hide_usage_chunk=False)
    chunk = b"a" * 4096
    started = time.perf_counter()
    with pytest.raises(UpstreamFailed, match="longer than"):
        for _ in range(MAX_EVENT_BYTES // len(chunk) + 1):
            scanner.feed(chunk)
    assert time.perf_counter() - started < 0.5
