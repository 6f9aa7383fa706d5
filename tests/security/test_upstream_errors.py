"""An upstream's error answer, read by a real gateway: summarised for the client, never echoed,
and a Retry-After that cannot bench a credential for years.

The fake upstream answers with messages that name its own URL, a key, a hostname, IPs and
the very credential the gateway sent it, padded to 100 KB.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gateway.upstream.upstream_errors import MAX_CLIENT_MESSAGE, client_message
from tests.support.fake_upstream import FakeUpstream, Fault
from tests.support.gateway_process import GatewayProcess
from tests.support.loop_thread import LoopThread
from tests.support.policy_repo import hash_of, new_secret
from tests.support.serving import serving
from tests.support.waiting import eventually
from tests.upstream.raw_server import Exchange, Upstream, response_head

CREDENTIAL = "sk-proj-GatewaysOwnCredential0123456789abcdef"
LEAKED_KEY = "sk-ant-api03-FakeKeyOfSomeoneElse_0123456789abcdefXYZ"
GOOGLE_KEY = "AIzaFakeKey-0123456789abcdefghijklmnopq"
HOSTNAME = "inference-7.internal.upstream-corp.com"
PRIVATE_IP = "10.20.30.40"
TOKEN_RUN = "c2VjcmV0LXRva2VuLXRoYXQtbXVzdC1ub3QtbGVhazAxMjM0NTY3ODk"


def providers(url: str, raw_url: str) -> dict[str, Any]:
    def p(kind: str = "openai-compatible", **kw: Any) -> dict[str, Any]:
        base = f"{url}/v1" if kind == "openai-compatible" else url
        return {"type": kind, "base_url": base, "credentials": ["env:UP_KEY"], **kw}

    return {
        "oai": p(max_retries=0),
        "claude": p("anthropic", max_retries=0),
        "gem": p("gemini", max_retries=0),
        "refusing": p(max_retries=0),
        "cool-number": p(cooldown_s=5),
        "cool-date": p(cooldown_s=5),
        "cool-gemini": p("gemini", cooldown_s=5),
        "cool-capped": p(cooldown_s=5, max_cooldown_s=7),
        "cool-negative": p(cooldown_s=5),
        "cool-garbage": p(cooldown_s=5),
        "cool-leak": p(),
        "midstream": {**p("anthropic"), "base_url": raw_url},
    }


ROUTES = {
    "r-oai": ["oai/m"],
    "r-claude": ["claude/c"],
    "r-gem": ["gem/g"],
    "r-refusing": ["refusing/m"],
    "r-cool-number": ["cool-number/m"],
    "r-cool-date": ["cool-date/m"],
    "r-cool-gemini": ["cool-gemini/g"],
    "r-cool-capped": ["cool-capped/m"],
    "r-cool-negative": ["cool-negative/m"],
    "r-cool-garbage": ["cool-garbage/m"],
    "r-cool-leak": ["cool-leak/m"],
    "r-midstream": ["midstream/c"],
}


@dataclass
class Rig:
    upstream: FakeUpstream
    gateway: GatewayProcess
    key: str
    admin: str

    def call(self, protocol: str, model: str) -> httpx.Response:
        text = [{"role": "user", "content": "hi"}]
        url = self.gateway.url
        if protocol == "openai":
            return httpx.post(
                url + "/v1/chat/completions",
                json={"model": model, "messages": text},
                headers={"authorization": f"Bearer {self.key}"},
                timeout=10,
            )
        if protocol == "anthropic":
            return httpx.post(
                url + "/v1/messages",
                json={"model": model, "max_tokens": 16, "messages": text},
                headers={"x-api-key": self.key, "anthropic-version": "2023-06-01"},
                timeout=10,
            )
        return httpx.post(
            f"{url}/v1beta/models/{model}:generateContent",
            json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
            headers={"x-goog-api-key": self.key},
            timeout=10,
        )

    def credential(self, provider: str) -> dict[str, Any]:
        status = httpx.get(
            self.gateway.url + "/admin/api/status",
            headers={"authorization": f"Bearer {self.admin}"},
        ).json()
        found = [e for e in status["credentials"] if e["provider"] == provider]
        assert len(found) == 1, status["credentials"]
        return dict(found[0])


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    upstream = FakeUpstream().start()
    thread = LoopThread()
    raw = Upstream(routes={})
    thread.run(raw.start())
    raw.routes["/v1/messages"] = lambda ex: error_mid_stream(ex, leaky_message(upstream))
    key, admin = new_secret(), new_secret()
    routes = {name: {"targets": targets} for name, targets in ROUTES.items()}
    keys = {
        "keys": [{"id": "tester", "hash": hash_of(key)}],
        "admins": [{"id": "ops", "hash": hash_of(admin)}],
    }
    try:
        with serving(
            tmp_path_factory.mktemp("upstream-errors"),
            providers=json.dumps({"providers": providers(upstream.url, raw.url(""))}),
            routes=json.dumps({"routes": routes}),
            keys=json.dumps(keys),
            args=("--log-level", "debug"),
            env={"UP_KEY": CREDENTIAL},
        ) as gateway:
            yield Rig(upstream, gateway, key, admin)
    finally:
        upstream.stop()
        thread.run(raw.stop())
        thread.stop()


@pytest.fixture
def r(rig: Rig) -> Rig:
    rig.upstream.reset()
    return rig


async def error_mid_stream(ex: Exchange, message: str) -> None:
    """An Anthropic stream that starts, then reports an error in the upstream's words."""
    await ex.send(response_head("200 OK", "Content-Type: text/event-stream"))
    await ex.chunk(b'event: message_start\ndata: {"type":"message_start","message":{}}\n\n')
    error = {"type": "error", "error": {"type": "overloaded_error", "message": message}}
    await ex.chunk(b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n")
    await ex.chunk(b"")


def leaky_message(upstream: FakeUpstream) -> str:
    head = (
        f"Invalid request to {upstream.url}/v1/chat/completions (Authorization: Bearer "
        f"{CREDENTIAL}); key {LEAKED_KEY} and {GOOGLE_KEY} were tried on {HOSTNAME} "
        f"[{PRIVATE_IP}] and 127.0.0.1:{upstream.port}, trace {TOKEN_RUN}. "
    )
    padding = "The upstream says more. " * (100_000 // 24)
    return head + padding + f"Again: {upstream.url} {CREDENTIAL} {HOSTNAME}"


def error_body(protocol: str, status: int, message: str) -> dict[str, Any]:
    if protocol == "anthropic":
        return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    if protocol == "gemini":
        return {"error": {"code": status, "message": message, "status": "INVALID_ARGUMENT"}}
    return {"error": {"message": message, "type": "invalid_request_error", "code": None}}


def assert_nothing_leaked(text: str, upstream: FakeUpstream) -> None:
    for leak in (
        CREDENTIAL,
        LEAKED_KEY,
        GOOGLE_KEY,
        HOSTNAME,
        PRIVATE_IP,
        TOKEN_RUN,
        upstream.url,
        f"127.0.0.1:{upstream.port}",
        "127.0.0.1",
        "sk-proj-",
        "AIzaSy",
    ):
        assert leak not in text, f"{leak!r} reached the client: {text[:600]}"


def message_of(response: httpx.Response) -> str:
    return str(response.json()["error"]["message"])  # where all three protocols put it


@pytest.mark.parametrize(
    ("client", "route", "upstream_protocol"),
    [
        ("openai", "r-oai", "openai"),
        ("anthropic", "r-claude", "anthropic"),
        ("gemini", "r-gem", "gemini"),
        ("openai", "r-claude", "anthropic"),  # translated on the way
        ("anthropic", "r-gem", "gemini"),
    ],
)
@pytest.mark.parametrize("status", [400, 404, 422])
def test_a_client_error_is_summarised_not_echoed(
    r: Rig, client: str, route: str, upstream_protocol: str, status: int
) -> None:
    body = error_body(upstream_protocol, status, leaky_message(r.upstream))
    r.upstream.fail_next(Fault(status, body=body))
    response = r.call(client, route)
    assert response.status_code == status
    assert_nothing_leaked(response.text, r.upstream)
    message = message_of(response)
    assert len(message) <= MAX_CLIENT_MESSAGE
    assert message.startswith("Invalid request to [url]"), message  # still says what went wrong
    assert len(response.content) < 2 * MAX_CLIENT_MESSAGE + 500


@pytest.mark.parametrize("status", [401, 429])
def test_credential_errors_say_nothing_of_the_upstreams_words(r: Rig, status: int) -> None:
    route = "r-refusing" if status == 401 else "r-cool-leak"
    body = error_body("openai", status, leaky_message(r.upstream))
    r.upstream.fail_next(Fault(status, body=body))
    response = r.call("openai", route)
    assert response.status_code in (502, 503)
    assert_nothing_leaked(response.text, r.upstream)
    assert "The upstream says more" not in response.text


def test_an_error_mid_stream_is_summarised_when_translated(r: Rig) -> None:
    response = httpx.post(
        r.gateway.url + "/v1/chat/completions",
        json={
            "model": "r-midstream",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
        },
        headers={"authorization": f"Bearer {r.key}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert "Invalid request to [url]" in response.text  # the error event arrived, masked
    assert_nothing_leaked(response.text, r.upstream)
    assert len(response.content) < 4 * MAX_CLIENT_MESSAGE


def test_what_tells_the_caller_what_to_fix_stays_readable(r: Rig) -> None:
    said = "prompt is too long: 210000 tokens > 200000 maximum (messages.0.content.1)"
    r.upstream.fail_next(Fault(400, body=error_body("anthropic", 400, said)))
    response = r.call("anthropic", "r-claude")
    assert response.status_code == 400
    assert message_of(response) == said


def test_the_debug_log_has_the_longer_message_masked(r: Rig) -> None:
    def refusals() -> list[str]:
        return [x for x in r.gateway.logs().splitlines() if "upstream refused the request" in x]

    before = len(refusals())
    r.upstream.fail_next(Fault(400, body=error_body("openai", 400, leaky_message(r.upstream))))
    assert r.call("openai", "r-oai").status_code == 400

    def ours() -> list[str]:  # other tests' refusals may be logged after it (one gateway)
        return [x for x in refusals()[before:] if "The upstream says more." in x]

    eventually(lambda: ours(), step_s=0.05)
    line = ours()[-1]
    assert "The upstream says more. " * 20 in line  # more than the client saw
    assert_nothing_leaked(line, r.upstream)


# Retry-After ------------------------------------------------------------------------------


def far_future_date() -> str:
    return email.utils.formatdate(time.time() + 20 * 365 * 86400, usegmt=True)


@pytest.mark.parametrize(
    ("route", "provider", "headers", "body", "expected_s"),
    [
        ("r-cool-number", "cool-number", {"retry-after": "100000000"}, None, 3600),
        ("r-cool-date", "cool-date", {"retry-after": far_future_date()}, None, 3600),
        (
            "r-cool-gemini",
            "cool-gemini",
            {},
            {
                "error": {
                    "code": 429,
                    "status": "RESOURCE_EXHAUSTED",
                    "message": "Quota exceeded",
                    "details": [{"retryDelay": "99999999s"}],
                }
            },
            3600,
        ),
        ("r-cool-capped", "cool-capped", {"retry-after": "100000000"}, None, 7),
        ("r-cool-negative", "cool-negative", {"retry-after": "-5"}, None, 5),
        ("r-cool-garbage", "cool-garbage", {"retry-after": "soon, maybe"}, None, 5),
    ],
)
def test_retry_after_is_clamped(
    r: Rig,
    route: str,
    provider: str,
    headers: dict[str, str],
    body: dict[str, Any] | None,
    expected_s: int,
) -> None:
    client = "gemini" if provider == "cool-gemini" else "openai"
    r.upstream.fail_next(Fault(429, headers=headers, body=body))
    response = r.call(client, route)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == str(expected_s)
    entry = r.credential(provider)
    assert entry["state"] == "cooling"
    assert expected_s - 2 < entry["cooling_down_s"] <= expected_s


# The summary itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ("messages[0].content is invalid", "messages[0].content is invalid"),
        ("see https://api.example.com/v1/x?key=abc", "see [url]"),
        ("at [2001:db8::7]:443 and fe80::1", "at [ip] and [ip]"),
        ("mail admin@corp.example.com", "mail [user]@[host]"),
        ("backend gw-3:8443 down", "backend [host] down"),
        ("line one\nline two\x1b[31m", "line one line two [31m"),
        ("model gemini-1.5-pro / claude-3.5-sonnet at 12:30:45", None),
        ("", "the upstream rejected the request"),
    ],
)
def test_client_message(said: str, shown: str | None) -> None:
    assert client_message(said) == (said if shown is None else shown)


def test_client_message_bounds_its_work() -> None:
    for hostile in ("a." * 50_000, "a@" * 50_000, "1:" * 50_000, "x" * 100_000):
        started = time.perf_counter()
        assert len(client_message(hostile)) <= MAX_CLIENT_MESSAGE
        assert time.perf_counter() - started < 0.05
