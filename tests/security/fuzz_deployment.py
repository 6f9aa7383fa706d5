"""One gateway with a route to each provider type, all at the recording fake; each client
endpoint it serves; and what one fuzzed exchange must satisfy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.security import fuzz_shapes as shapes
from tests.security import fuzz_strategies as fs
from tests.security.fuzz_upstream import RecordingUpstream
from tests.support.gateway_process import FAKE_UPSTREAM_KEY, GatewayProcess
from tests.support.policy_repo import PolicyRepo, new_secret
from tests.support.raw_client import Reply, post
from tests.support.serving import commit_policy, one_key

PROVIDER_TYPES = ("openai", "openai-compatible", "azure-openai", "anthropic", "gemini")
MAX_REQUEST_S = 2.0
"""The longest any one request may take, whatever its body (the fake answers at once)."""


def route_of(provider_type: str) -> str:
    return f"fz-{provider_type}"


@dataclass(frozen=True)
class Endpoint:
    protocol: str
    path: str
    """With `{model}` where the protocol puts the model in the path."""
    body: Callable[[str], fs.Strategy]

    @property
    def name(self) -> str:
        return self.path.replace("/{model}", "")

    def target(self, model: str) -> str:
        return self.path.replace("{model}", model)


ENDPOINTS = (
    Endpoint("openai", "/v1/chat/completions", shapes.chat),
    Endpoint("openai", "/v1/completions", shapes.completions),
    Endpoint("openai", "/v1/embeddings", shapes.embeddings),
    Endpoint("openai", "/v1/responses", shapes.responses),
    Endpoint("anthropic", "/v1/messages", shapes.anthropic_messages),
    Endpoint("anthropic", "/v1/messages/count_tokens", shapes.anthropic_count_tokens),
    Endpoint("gemini", "/v1beta/models/{model}:generateContent", shapes.gemini_generate),
    Endpoint(
        "gemini", "/v1beta/models/{model}:streamGenerateContent?alt=sse", shapes.gemini_generate
    ),
    Endpoint("gemini", "/v1/models/{model}:streamGenerateContent", shapes.gemini_generate),
    Endpoint("gemini", "/v1beta/models/{model}:countTokens", shapes.gemini_count_tokens),
    Endpoint("gemini", "/v1beta/models/{model}:embedContent", shapes.gemini_embed),
    Endpoint("gemini", "/v1beta/models/{model}:batchEmbedContents", shapes.gemini_batch_embed),
)


def _provider(kind: str, url: str) -> str:
    base = f"{url}/v1" if kind in ("openai", "openai-compatible") else url
    extra = "    api_version: '2024-10-21'\n" if kind == "azure-openai" else ""
    return (
        f"  fz-{kind}:\n    type: {kind}\n    base_url: {base}\n"
        "    credentials: [env:FAKE_UPSTREAM_KEY]\n    max_retries: 0\n    timeout_s: 5\n" + extra
    )


def write_policy(repo: PolicyRepo, url: str, secret: str) -> None:
    providers = "".join(_provider(kind, url) for kind in PROVIDER_TYPES)
    routes = "".join(
        f"  {route_of(kind)}:\n    targets: [fz-{kind}/up-model]\n    deadline_s: 5\n"
        for kind in PROVIDER_TYPES
    )
    commit_policy(
        repo,
        providers="providers:\n" + providers,
        routes="routes:\n" + routes,
        keys=one_key(secret, "fuzzer"),
    )


@dataclass
class RunNumbers:
    requests: int = 0
    reached: int = 0
    """Requests that the gateway sent on to the upstream (the rest it refused itself)."""
    seconds: float = 0.0
    what: str = ""

    def note(self, seconds: float, what: str, reached: bool) -> None:
        self.requests += 1
        self.reached += reached
        if seconds > self.seconds:
            self.seconds, self.what = seconds, what


TIMES = RunNumbers()
"""Every fuzzed request of this run (shown in pytest's summary by conftest.py)."""


@dataclass
class FuzzDeployment:
    upstream: RecordingUpstream
    gateway: GatewayProcess
    key: str

    @classmethod
    def start(cls, root: Path) -> FuzzDeployment:
        upstream = RecordingUpstream().start()
        repo = PolicyRepo(root / "policy")
        secret = new_secret()
        write_policy(repo, upstream.url, secret)
        gateway = GatewayProcess(repo.path, root / "state")
        try:
            gateway.start()
        except Exception:
            upstream.stop()
            raise
        return cls(upstream, gateway, secret)

    def stop(self) -> None:
        self.gateway.stop()
        self.upstream.stop()

    def auth(self, protocol: str) -> list[tuple[bytes, bytes]]:
        key = self.key.encode()
        if protocol == "anthropic":
            return [(b"x-api-key", key), (b"anthropic-version", b"2023-06-01")]
        if protocol == "gemini":
            return [(b"x-goog-api-key", key)]
        return [(b"authorization", b"Bearer " + key)]

    def call(
        self, endpoint: Endpoint, provider_type: str, body: bytes, headers: list[tuple[str, str]]
    ) -> Reply:
        model = route_of(provider_type)
        sent = self.auth(endpoint.protocol) + [(n.encode(), v.encode()) for n, v in headers]
        reply = post(self.gateway.port, endpoint.target(model), sent, body)
        what = f"{endpoint.name} -> {provider_type} ({reply.status})"
        TIMES.note(reply.elapsed_s, what, bool(self.upstream.seen))
        return reply

    # the properties --------------------------------------------------------------------
    def check(
        self, endpoint: Endpoint, provider_type: str, reply: Reply, headers: list[tuple[str, str]]
    ) -> None:
        received = list(self.upstream.seen)
        assert_no_server_error(reply, bool(received) and self.upstream.failing, self.gateway)
        assert reply.elapsed_s < MAX_REQUEST_S, f"took {reply.elapsed_s:.3f} s"
        forwardable = _forwardable(endpoint, provider_type, headers)
        for request in received:
            assert_nothing_of_client_in_head(request.head, forwardable, self.key)
        assert_no_upstream_secret(reply, self.upstream.leaks)


def assert_no_server_error(reply: Reply, upstream_failed: bool, gateway: GatewayProcess) -> None:
    """No 5xx, except a 502/503/504 for an upstream that failed (its 5xx or unreadable 200)."""
    if reply.status < 500:
        return
    assert upstream_failed and reply.status in (502, 503, 504), (
        f"gateway answered {reply.status} (upstream failed: {upstream_failed}):\n{reply.text}\n"
        + gateway.logs()[-3000:]
    )


def _forwardable(
    endpoint: Endpoint, provider_type: str, headers: list[tuple[str, str]]
) -> set[bytes]:
    """Header lines the protocol lets through from client to upstream: `anthropic-beta`,
    from an Anthropic client to an Anthropic upstream, when it passes the gateway's grammar
    (then it must arrive exactly as sent)."""
    if endpoint.protocol != "anthropic" or provider_type != "anthropic":
        return set()
    return {f"anthropic-beta: {v.strip()}".encode() for n, v in headers if n == "anthropic-beta"}


def assert_nothing_of_client_in_head(head: bytes, forwardable: set[bytes], key: str) -> None:
    lines = [line.rstrip(b"\r") for line in head.split(b"\n")]
    checked = b"\n".join(line for line in lines if line not in forwardable)
    assert fs.MARK.encode() not in checked.lower(), f"client text upstream:\n{head!r}"
    assert key.encode() not in head, "the client's key went upstream"


def assert_no_upstream_secret(reply: Reply, leaks: tuple[str, ...]) -> None:
    text = reply.text
    for secret in (*leaks, FAKE_UPSTREAM_KEY):
        assert secret not in text, f"the client read {secret!r}:\n{text}"
