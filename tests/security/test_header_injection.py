"""Nothing from a client reaches an upstream's framing (issue 12, finding 1).

Against the real server over raw sockets, with an Anthropic upstream whose parser is lenient
as h11's and nginx's are (a bare LF ends a line), and that records every request it parses on
each keep-alive connection. An `anthropic-beta` value carrying a bare LF, a whole second
request, or anything outside the header's grammar is a 400 in Anthropic's shape, and the
upstream sees neither the injected header nor an extra request; the next caller on the same
pooled connection gets its own answer.

Sanic keeps a bare LF inside a header value. The server's head check (gateway/front_door.py)
and the forwarded-header allowlist (gateway/request/forwarded_headers.py) each refuse it; the values
outside the grammar below pass the first and only the second refuses them. The engine's own
refusal is in tests/upstream/test_http1_headers.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from multidict import CIMultiDict

from gateway.cli import main
from gateway.errors import BadRequest, Protocol
from gateway.request.forwarded_headers import forwarded_headers
from tests.support.gateway_process import GatewayProcess
from tests.support.lenient_upstream import LenientUpstream, Request, Response
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret
from tests.support.raw_client import post_json
from tests.support.serving import commit_policy, one_key, serving


def _text(request: Request) -> str:
    """The first user message's text ("" when the body is not a Messages request)."""
    try:
        return str(request.json()["messages"][0]["content"])
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


class LenientAnthropic(LenientUpstream):
    """Answers every request with a message whose text is the request's own first user
    message (so an answer meant for another caller shows)."""

    def answer(self, request: Request) -> Response:
        message = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-up",
            "content": [{"type": "text", "text": _text(request) or "unreadable"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 1},
        }
        return Response.of_json(message)


class Site:
    def __init__(self, upstream: LenientAnthropic, gateway: GatewayProcess, key: str) -> None:
        self.upstream, self.gateway, self.key = upstream, gateway, key

    def ask(self, text: str, extra: bytes = b"") -> tuple[int, dict[str, Any]]:
        """One raw Messages request (`extra`: head lines, sent as they are)."""
        body = {"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": text}]}
        auth = [(b"x-api-key", self.key.encode()), (b"anthropic-version", b"2023-06-01")]
        reply = post_json(self.gateway.port, "/v1/messages", auth, body, raw_lines=extra)
        return reply.status, reply.json()

    def innocent(self) -> None:
        """A caller with nothing to hide gets its own answer."""
        marker = f"innocent-{uuid.uuid4()}"
        status, answer = self.ask(marker)
        assert status == 200, answer
        assert answer["content"][0]["text"] == marker


CLAUDE_ROUTE = "routes:\n  claude:\n    targets: [claude/claude-up]\n"


def anthropic_provider(url: str) -> str:
    """One Anthropic provider at the lenient upstream, never retried."""
    return f"""
    providers:
      claude:
        type: anthropic
        base_url: {url}
        credentials: [env:FAKE_UPSTREAM_KEY]
        max_retries: 0
    """


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    upstream = LenientAnthropic().start()
    key = new_secret()
    try:
        with serving(
            tmp_path_factory.mktemp("header-injection"),
            providers=anthropic_provider(upstream.url),
            routes=CLAUDE_ROUTE,
            keys=one_key(key, "caller"),
        ) as gateway:
            yield Site(upstream, gateway, key)
    finally:
        upstream.stop()


@pytest.fixture
def s(site: Site) -> Site:
    site.innocent()  # a keep-alive upstream connection now waits in the gateway's pool
    site.upstream.seen.clear()
    return site


HOSTILE = {
    "injected-header": b"anthropic-beta: x\nX-Injected: 1\r\n",
    "smuggled-request": (
        b"anthropic-beta: x\nContent-Length: 0\n\nPOST /v1/messages HTTP/1.1\n"
        b"Host: 127.0.0.1\nX-Injected: 1\nX-Pad: \r\n"
    ),
    "bare-cr": b"anthropic-beta: x\rX-Injected: 1\r\n",
    # Well-formed HTTP, outside the header's grammar: only the allowlist stands in the way.
    "parameter": b"anthropic-beta: tools-2024-04-04; X-Injected=1\r\n",
    "space-inside": b"anthropic-beta: tools 2024\r\n",
    "leading-dot": b"anthropic-beta: .hidden\r\n",
    "too-many": b"anthropic-beta: " + b",".join(b"b%d" % i for i in range(33)) + b"\r\n",
    "too-long": b"anthropic-beta: " + b"b" * 129 + b"\r\n",
}


@pytest.mark.parametrize("extra", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_anthropic_beta_is_a_400_and_never_reaches_the_upstream(
    s: Site, extra: bytes
) -> None:
    status, answer = s.ask("attacker", extra)
    assert status == 400, answer
    assert answer["type"] == "error"
    assert answer["error"]["type"] == "invalid_request_error"
    assert s.upstream.seen == []
    s.innocent()
    assert len(s.upstream.seen) == 1
    only = s.upstream.seen[0]
    assert (only.method, only.target) == ("POST", "/v1/messages")
    assert "x-injected" not in only.headers and "anthropic-beta" not in only.headers


def test_the_grammar_error_names_the_header_and_what_it_allows(s: Site) -> None:
    status, answer = s.ask("attacker", HOSTILE["parameter"])
    assert status == 400
    message = answer["error"]["message"]
    assert "anthropic-beta" in message and "comma-separated" in message
    assert "X-Injected" not in message  # what was sent is not echoed


def test_a_well_formed_anthropic_beta_goes_upstream_as_sent(s: Site) -> None:
    beta = "prompt-caching-2024-07-31 ,\ttools-2024-04-04,"
    status, _ = s.ask("beta", f"anthropic-beta: {beta}\r\n".encode())
    assert status == 200
    (seen,) = s.upstream.seen
    assert seen.headers["anthropic-beta"] == beta


def test_no_other_client_header_goes_upstream(s: Site) -> None:
    status, _ = s.ask("other", b"X-Forwarded-Host: evil.test\r\nanthropic-version-x: 1\r\n")
    assert status == 200
    (seen,) = s.upstream.seen
    assert "x-forwarded-host" not in seen.headers and "anthropic-version-x" not in seen.headers


# ------------------------------------------------------------------ the allowlist, in process


@pytest.mark.parametrize(
    "value", ["x\nX-Injected: 1", "x\r\n", "x\x00", "a;b", "a b", "-a", "é", "a" * 129]
)
def test_the_allowlist_refuses_what_its_grammar_does_not_hold(value: str) -> None:
    headers = CIMultiDict({"anthropic-beta": value})
    with pytest.raises(BadRequest, match="anthropic-beta"):
        forwarded_headers(headers, Protocol.ANTHROPIC)


def test_the_allowlist_joins_repeated_headers_and_forwards_nothing_else() -> None:
    headers = CIMultiDict(
        [("Anthropic-Beta", "a-1, b.2"), ("anthropic-beta", "c_3"), ("x-other", "1")]
    )
    assert forwarded_headers(headers, Protocol.ANTHROPIC) == (
        Protocol.ANTHROPIC,
        {"anthropic-beta": "a-1, b.2,c_3"},
    )
    assert forwarded_headers(headers, Protocol.OPENAI) is None
    assert forwarded_headers(CIMultiDict({"anthropic-beta": " , "}), Protocol.ANTHROPIC) is None


# ------------------------------------------------------------------ the policy's own headers


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ('x-team: "a\\r\\nX-Injected: 1"', "one line"),
        ('x-team: "a\\nb"', "one line"),
        ('x-team: "a\\0b"', "one line"),
        ('"x team": a', "not an HTTP token"),
        ('"x:y": a', "not an HTTP token"),
        ("content-length: '0'", "set by the gateway"),
        ("Transfer-Encoding: chunked", "set by the gateway"),
    ],
)
def test_policy_check_refuses_provider_headers_that_would_break_framing(
    policy_repo: PolicyRepo, capsys: pytest.CaptureFixture[str], header: str, problem: str
) -> None:
    commit_policy(
        policy_repo,
        providers=f"""
        providers:
          claude:
            type: anthropic
            base_url: http://127.0.0.1:9
            headers:
              {header}
        """,
        routes="routes:\n  claude:\n    targets: [claude/claude-up]\n",
        keys=one_key(new_secret(), "caller"),
    )
    assert main(["policy", "check", "--repo", str(policy_repo.path), "--rev", "HEAD"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("providers.yaml:6:"), out
    assert problem in out


# ------------------------------------------------------------------ refused before admission


class Limited:
    """A gateway whose keys may send one request a minute (each test its own key)."""

    def __init__(self, upstream: LenientAnthropic, gateway: GatewayProcess, keys: list[str]):
        self.upstream, self.gateway, self.keys = upstream, gateway, keys

    def post(self, key: str, path: str, extra: bytes = b"") -> int:
        body = {"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
        auth = [(b"x-api-key", key.encode()), (b"anthropic-version", b"2023-06-01")]
        return post_json(self.gateway.port, path, auth, body, raw_lines=extra).status


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Limited]:
    upstream = LenientAnthropic().start()
    keys = [new_secret() for _ in range(3)]
    key_lines = "".join(f"  - id: caller{i}\n    hash: {hash_of(k)}\n" for i, k in enumerate(keys))
    try:
        with serving(
            tmp_path_factory.mktemp("beta-before-admission"),
            providers=anthropic_provider(upstream.url),
            routes=CLAUDE_ROUTE,
            keys="keys:\n" + key_lines,
            limits="default: {rpm: 1}\ntiers: {}\n",
        ) as gateway:
            yield Limited(upstream, gateway, keys)
    finally:
        upstream.stop()


@pytest.mark.parametrize(
    ("path", "key"),
    [("/v1/messages", 0), ("/v1/messages/count_tokens", 1)],
    ids=["messages", "count"],
)
def test_a_refused_anthropic_beta_counts_toward_no_limit(
    limited: Limited, path: str, key: int
) -> None:
    secret = limited.keys[key]
    for _ in range(3):
        assert limited.post(secret, path, HOSTILE["parameter"]) == 400
    assert limited.post(secret, path) == 200  # the key's one request a minute is still there
    assert limited.post(secret, path) == 429


def test_count_tokens_forwards_a_well_formed_anthropic_beta(limited: Limited) -> None:
    limited.upstream.seen.clear()
    beta = "prompt-caching-2024-07-31,token-counting-2024-11-01"
    extra = f"anthropic-beta: {beta}\r\n".encode()
    assert limited.post(limited.keys[2], "/v1/messages/count_tokens", extra) == 200
    (seen,) = limited.upstream.seen
    assert seen.target == "/v1/messages/count_tokens"
    assert seen.headers["anthropic-beta"] == beta
