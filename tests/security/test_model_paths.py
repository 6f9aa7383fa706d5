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
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret

_HEAD_END = re.compile(rb"\r?\n\r?\n")
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


class RecordingUpstream:
    """A lenient HTTP/1.1 server (bare LF accepted, as h11 and nginx do) that records every
    request target verbatim."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while (end := _HEAD_END.search(buffer)) is None:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                lines = buffer[: end.start()].decode("latin-1").split("\n")
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                buffer = buffer[end.end() :]
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                target = lines[0].rstrip("\r").split(" ")[1]
                self.targets.append(target)
                self.bodies.append(json.loads(body) if body else {})
                conn.sendall(self._answer(target))

    @staticmethod
    def _answer(target: str) -> bytes:
        path = target.split("?")[0]
        status, answer = 200, {"error": {"message": "no such path"}}
        if path.endswith(":generateContent"):
            answer = _GEMINI_ANSWER
        elif path.endswith(":countTokens"):
            answer = {"totalTokens": 3}
        elif path.endswith("/chat/completions"):
            answer = {
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "ok"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }
        else:
            status = 404
        data = json.dumps(answer).encode()
        head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        return (head + f"Content-Length: {len(data)}\r\n\r\n").encode() + data


class Site:
    def __init__(self, upstream: RecordingUpstream, gateway: GatewayProcess) -> None:
        self.upstream, self.gateway = upstream, gateway
        self.keys: dict[str, str] = {}

    def send(
        self, method: str, target: str, key: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """One raw request; the status and the JSON answer."""
        data = json.dumps(body).encode() if body is not None else b""
        secret = self.keys[key]
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {secret}\r\nx-goog-api-key: {secret}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", self.gateway.port), timeout=5) as sock:
            sock.sendall(head.encode("latin-1") + data)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        head_bytes, _, payload = answer.partition(b"\r\n\r\n")
        return int(head_bytes.split(b" ", 2)[1]), json.loads(payload) if payload else {}

    def chat(self, model: str, key: str = "all") -> tuple[int, dict[str, Any]]:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        return self.send("POST", "/v1/chat/completions", key, body)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    upstream = RecordingUpstream()
    root: Path = tmp_path_factory.mktemp("model-paths")
    repo = PolicyRepo(root / "policy")
    repo.write(
        "providers.yaml",
        f"""
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
    )
    repo.write(
        "routes.yaml",
        """
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
    )
    repo.write("limits.yaml", "default: {}\ntiers: {}\n")
    keys = {"all": new_secret(), "limited": new_secret()}
    repo.write(
        "keys.yaml",
        f"""
        keys:
          - id: all
            hash: {hash_of(keys["all"])}
          - id: limited
            hash: {hash_of(keys["limited"])}
            models: ["gemini-1.5-*"]
        """,
    )
    repo.commit("gemini, azure and openai-compatible routes")
    gateway = GatewayProcess(repo.path, root / "state")
    try:
        gateway.start()
        built = Site(upstream, gateway)
        built.keys = keys
        yield built
    finally:
        gateway.stop()
        upstream.close()


@pytest.fixture
def s(site: Site) -> Site:
    site.upstream.targets.clear()
    site.upstream.bodies.clear()
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
    assert s.upstream.bodies[0]["model"] == "meta-llama/Llama-3.1-8B"


def test_an_azure_deployment_is_one_path_segment(s: Site) -> None:
    status, answer = s.chat("azure-gpt-4o_prod.v2")
    assert status == 200, answer
    assert s.upstream.targets == [
        "/openai/deployments/gpt-4o_prod.v2/chat/completions?api-version=2024-10-21"
    ]
