"""Model names never walk upstream URL paths (issue 12, finding 3).

Against the real server, over raw sockets (so no client library normalises a path on the
way), with a lenient loopback upstream that records each request target exactly as it
arrived and answers as Gemini, Azure OpenAI or an OpenAI-compatible server. A hostile name
gets a 4xx in the caller's protocol and the upstream sees nothing; a key limited to
`gemini-1.5-*` reaches only `gemini-1.5-*` model paths.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import raw_client
from tests.support.gateway_process import GatewayProcess
from tests.support.lenient_upstream import LenientUpstream, Request, Response
from tests.support.policy_repo import hash_of, new_secret
from tests.support.serving import serving

_USAGE = {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4}
_GEMINI_ANSWER = {
    "candidates": [
        {
            "content": {"role": "model", "parts": [{"text": "ok"}]},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": _USAGE,
}
_CHAT_ANSWER = {
    "id": "c1",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


class RecordingUpstream(LenientUpstream):
    """Answers as Gemini, Azure OpenAI or an OpenAI-compatible server, by the path."""

    @property
    def targets(self) -> list[str]:
        return [request.target for request in self.seen]

    def answer(self, request: Request) -> Response:
        path = request.path
        if path.endswith(":generateContent"):
            return Response.of_json(_GEMINI_ANSWER)
        if path.endswith(":countTokens"):
            return Response.of_json({"totalTokens": 3})
        if path.endswith("/chat/completions"):
            return Response.of_json(_CHAT_ANSWER)
        return Response.of_json({"error": {"message": "no such path"}}, 404)


class Site:
    def __init__(self, upstream: RecordingUpstream, gateway: GatewayProcess) -> None:
        self.upstream, self.gateway = upstream, gateway
        self.keys: dict[str, str] = {}

    def send(
        self, method: str, target: str, key: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """One raw request; the status and the JSON answer."""
        data = json.dumps(body).encode() if body is not None else b""
        secret = self.keys[key].encode()
        auth = [(b"authorization", b"Bearer " + secret), (b"x-goog-api-key", secret)]
        reply = raw_client.send(self.gateway.port, method, target, auth, data)
        return reply.status, reply.json()

    def chat(self, model: str, key: str = "all") -> tuple[int, dict[str, Any]]:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        return self.send("POST", "/v1/chat/completions", key, body)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    upstream = RecordingUpstream().start()
    keys = {"all": new_secret(), "limited": new_secret()}
    try:
        with serving(
            tmp_path_factory.mktemp("model-paths"),
            providers=f"""
            providers:
              gem:
                type: gemini
                base_url: {upstream.url}
                credentials: [env:FAKE_UPSTREAM_KEY]
                max_retries: 0
              az:
                type: azure-openai
                base_url: {upstream.url}
                credentials: [env:FAKE_UPSTREAM_KEY]
                max_retries: 0
              open:
                type: openai-compatible
                base_url: {upstream.url}/v1
                credentials: [env:FAKE_UPSTREAM_KEY]
                max_retries: 0
            """,
            routes="""
            routes:
              meta-llama/Llama-3.1-8B:
                targets: [open/meta-llama/Llama-3.1-8B]
              "gemini-*":
                targets: [gem/gemini-*]
              "azure-*":
                targets: [az/*]
              "tuned/*":
                targets: [gem/tuned/*]
            """,
            keys=f"""
            keys:
              - id: all
                hash: {hash_of(keys["all"])}
              - id: limited
                hash: {hash_of(keys["limited"])}
                models: ["gemini-1.5-*"]
            """,
        ) as gateway:
            built = Site(upstream, gateway)
            built.keys = keys
            yield built
    finally:
        upstream.stop()


@pytest.fixture
def s(site: Site) -> Site:
    site.upstream.seen.clear()
    return site


@pytest.mark.parametrize(
    ("model", "status"),
    [
        ("gemini-1.5-x/../../gemini-pro", 400),
        ("gemini-1.5-x/../../../v1beta/files", 400),
        ("gemini-1.5-%2e%2e%2fgemini-pro", 400),
        ("gemini-1.5-a:generateContent?", 400),
        ("gemini-1.5-a:generateContent#", 400),
        ("gemini-1.5-x:countTokens", 400),
        ("gemini-1.5-x\\..\\gemini-pro", 400),
        ("gemini-1.5-x\r\nHost: evil", 400),
        ("gemini-1.5-\u202e", 400),
        ("gemini-" + "a" * 300, 400),
        ("azure-..", 400),
        ("azure-", 400),
        ("azure-x:y", 400),
        ("tuned/x", 400),  # a Gemini target would carry the '/' into its path
        ("gemini-1.5-x/y", 404),  # '*' does not match '/'
    ],
)
def test_a_hostile_model_name_is_refused_and_nothing_goes_upstream(
    s: Site, model: str, status: int
) -> None:
    got, body = s.chat(model)
    assert got == status, body
    assert body["error"]["message"]
    if status == 400:
        assert body["error"]["param"] == "model"
    assert s.upstream.targets == []


GEMINI_PATHS = [
    ("/v1beta/models/gemini-1.5-x%2F..%2F..%2Fgemini-pro:generateContent", 400),
    ("/v1beta/models/gemini-1.5-x%2f..%2fgemini-pro:generateContent", 400),
    ("/v1beta/models/gemini-1.5-x/../gemini-pro:generateContent", 400),
    ("/v1beta/models/gemini-1.5-x%252F..%252Fgemini-pro:generateContent", 400),
    ("/v1beta/models/gemini-1.5-x%3AcountTokens:generateContent", 400),
    ("/v1beta/models/gemini-1.5-x%3Falt=sse:generateContent", 400),
    ("/v1beta/models/gemini-1.5-x%23:generateContent", 400),
    ("/v1beta/models/gemini-1.5-x%0D%0AHost:%20evil:generateContent", 400),
    ("/v1beta/models/gemini-1.5-x%2Fy:generateContent", 404),
    ("/v1beta/models/gemini-pro:generateContent", 403),
    ("/v1beta/models/azure-gpt4:generateContent", 403),
    ("/v1/models/gemini-1.5-x%2F..%2Fgemini-pro:countTokens", 400),
]


@pytest.mark.parametrize(("target", "status"), GEMINI_PATHS)
def test_a_gemini_path_cannot_reach_another_model_with_a_limited_key(
    s: Site, target: str, status: int
) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    got, answer = s.send("POST", target, "limited", body)
    assert got == status, answer
    assert answer["error"]["code"] == status  # Gemini's error shape
    assert s.upstream.targets == []


def test_an_anthropic_caller_gets_its_own_error_shape(s: Site) -> None:
    body = {"model": "gemini-1.5-x/../gemini-pro", "max_tokens": 5, "messages": []}
    status, answer = s.send("POST", "/v1/messages", "all", body)
    assert status == 400
    assert answer["type"] == "error" and answer["error"]["type"] == "invalid_request_error"
    assert s.upstream.targets == []


@pytest.mark.parametrize(
    "target",
    [
        "/v1/models/gemini-1.5-x%2F..%2Fgemini-pro",
        "/v1/models/gemini-1.5-x/../gemini-pro",
        "/v1beta/models/gemini-1.5-x%2F..%2Fgemini-pro",
    ],
)
def test_retrieving_a_hostile_model_name_is_a_400(s: Site, target: str) -> None:
    status, answer = s.send("GET", target, "limited")
    assert status == 400, answer


def test_the_limited_key_reaches_only_its_own_models_upstream(s: Site) -> None:
    for target, _ in GEMINI_PATHS:
        s.send("POST", target, "limited", {"contents": [{"role": "user", "parts": []}]})
    for model in ("gemini-1.5-x/../../gemini-pro", "gemini-1.5-x:countTokens", "gemini-pro"):
        s.chat(model, key="limited")
    assert s.upstream.targets == []
    count = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert s.send("POST", "/v1beta/models/gemini-1.5-flash:countTokens", "limited", count)[0] == 200
    assert s.chat("gemini-1.5-flash", key="limited")[0] == 200
    assert s.chat("gemini-1.5-..", key="limited")[0] == 200  # a name, not a path segment
    allowed = re.compile(r"/v1beta/models/gemini-1\.5-[\w.-]+:(generateContent|countTokens)")
    assert len(s.upstream.targets) == 3
    assert all(allowed.fullmatch(t) for t in s.upstream.targets), s.upstream.targets


def test_a_model_name_with_a_slash_still_reaches_a_body_upstream(s: Site) -> None:
    status, answer = s.chat("meta-llama/Llama-3.1-8B")
    assert status == 200, answer
    assert s.upstream.targets == ["/v1/chat/completions"]
    assert s.upstream.seen[0].json()["model"] == "meta-llama/Llama-3.1-8B"


def test_an_azure_deployment_is_one_path_segment(s: Site) -> None:
    status, answer = s.chat("azure-gpt-4o_prod.v2")
    assert status == 200, answer
    assert s.upstream.targets == [
        "/openai/deployments/gpt-4o_prod.v2/chat/completions?api-version=2024-10-21"
    ]
