"""OpenTelemetry traces from the real gateway, received by a loopback OTLP/HTTP receiver:
the span tree of a request with a retry and a failover, its GenAI attributes, no secrets or
prompts, and the W3C trace context continued from the client and passed upstream."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.support.fake_upstream import FakeUpstream, Fault
from tests.support.gateway_process import FAKE_UPSTREAM_KEY, GatewayProcess
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret
from tests.tracing.otlp_receiver import OtlpReceiver, ReceivedSpan

PROMPT = "the launch codes are PROMPT-XYZZY-4711"
W3C = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
"""A traceparent the gateway writes: its trace id, its parent (span) id, its flags."""
SPEEDY_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "50"}
"""Batches leave every 50 ms instead of 5 s, so tests wait little (the SDK reads it)."""


@dataclass
class Traced:
    upstream: FakeUpstream
    receiver: OtlpReceiver
    gateway: GatewayProcess
    key: str
    commit: str

    def chat(self, headers: dict[str, str] | None = None) -> httpx.Response:
        body = {"model": "traced", "messages": [{"role": "user", "content": PROMPT}]}
        return httpx.post(
            self.gateway.url + "/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {self.key}", **(headers or {})},
            timeout=10,
        )

    def upstream_traceparents(self) -> list[str]:
        return [r.headers.get("traceparent", "") for r in self.upstream.requests]


def _policy(repo: PolicyRepo, upstream_url: str, key: str) -> str:
    def provider(retries: int) -> dict[str, Any]:
        return {
            "type": "openai-compatible",
            "base_url": f"{upstream_url}/v1",
            "credentials": ["env:FAKE_UPSTREAM_KEY"],
            "max_retries": retries,
        }

    # JSON is YAML.
    repo.write(
        "providers.yaml", _json({"providers": {"flaky": provider(1), "backup": provider(0)}})
    )
    repo.write("routes.yaml", _json({"routes": {"traced": {"targets": ["flaky/m1", "backup/m2"]}}}))
    repo.write("prices.yaml", "prices:\n  backup/m2: {input: 1000000, output: 2000000}\n")
    repo.write("teams.yaml", "teams:\n  search: {owner: lead@example.com}\n")
    repo.write("limits.yaml", "default: {}\ntiers: {}\n")
    keys = {"keys": [{"id": "tracer-key", "hash": hash_of(key), "team": "search"}]}
    repo.write("keys.yaml", _json(keys))
    return repo.commit("traced policy")


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def _deploy(root: Path, *gateway_args: str) -> Iterator[Traced]:
    upstream = FakeUpstream().start()
    receiver = OtlpReceiver().start()
    repo = PolicyRepo(root / "policy")
    key = new_secret()
    commit = _policy(repo, upstream.url, key)
    gateway = GatewayProcess(
        repo.path,
        root / "state",
        "--otlp-endpoint",
        receiver.url,
        *gateway_args,
        env=SPEEDY_EXPORT,
    )
    try:
        yield Traced(upstream, receiver, gateway.start(), key, commit)
    finally:
        gateway.stop()
        receiver.stop()
        upstream.stop()


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[Traced]:
    yield from _deploy(tmp_path, "--otel-sample-ratio", "1")  # every new trace kept


def _tree(spans: list[ReceivedSpan]) -> tuple[ReceivedSpan, list[ReceivedSpan]]:
    roots = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER]
    assert len(roots) == 1, spans
    root = roots[0]
    attempts = sorted(
        (s for s in spans if s.parent_span_id == root.span_id), key=lambda s: s.start_ns
    )
    return root, attempts


def test_a_retry_and_a_failover_make_one_request_span_with_an_attempt_span_each(
    traced: Traced,
) -> None:
    client_trace, client_span = secrets.token_hex(16), secrets.token_hex(8)
    traced.upstream.fail_next(Fault(503), Fault(500))  # flaky: tried, retried; then backup
    response = traced.chat({"traceparent": f"00-{client_trace}-{client_span}-01"})
    assert response.status_code == 200, response.text

    root, attempts = _tree(traced.receiver.wait_for(4))
    assert traced.receiver.paths[0] == "/v1/traces"
    # The client's trace goes on: the request span is its child.
    assert root.trace_id == client_trace and root.parent_span_id == client_span
    assert root.name == "chat traced"
    assert root.resource["service.name"] == "modelgate"
    a = root.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "traced"
    assert a["gen_ai.response.model"] == "m2"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.usage.input_tokens"] == 11 and a["gen_ai.usage.output_tokens"] == 7
    assert a["modelgate.key_id"] == "tracer-key" and a["modelgate.team"] == "search"
    assert a["modelgate.route"] == "traced"
    assert a["modelgate.policy.commit"] == traced.commit
    assert a["modelgate.cost_usd"] == pytest.approx(11 * 1 + 7 * 2)
    assert a["modelgate.target"] == "backup/m2"
    assert a["http.route"] == "/v1/chat/completions"
    assert a["http.response.status_code"] == 200
    assert root.status_code != Status.STATUS_CODE_ERROR

    # One child per upstream attempt, in order: the retry and the failover are visible.
    assert [
        (s.attributes["modelgate.target"], s.attributes.get("http.response.status_code"))
        for s in attempts
    ] == [("flaky/m1", 503), ("flaky/m1", 500), ("backup/m2", 200)]
    assert [s.attributes["modelgate.attempt"] for s in attempts] == [1, 2, 3]
    assert all(s.kind == Span.SPAN_KIND_CLIENT and s.trace_id == client_trace for s in attempts)
    assert [s.status_code for s in attempts][:2] == [Status.STATUS_CODE_ERROR] * 2
    assert attempts[0].attributes["error.type"] == "503"
    assert attempts[2].attributes["gen_ai.request.model"] == "m2"
    assert attempts[2].attributes["server.address"] == "127.0.0.1"
    assert attempts[2].name == "chat m2"

    # Each upstream request carried its own attempt's context, in the same trace.
    sent = traced.upstream_traceparents()
    assert len(sent) == 3
    for header, attempt in zip(sent, attempts, strict=True):
        match = W3C.fullmatch(header)
        assert match, header
        assert match.groups()[:2] == (client_trace, attempt.span_id)
        assert int(match[3], 16) & 1  # sampled

    # No prompt, no client key, no upstream credential, no upstream URL in any export.
    exported = b"".join(traced.receiver.raw)
    for secret in (PROMPT, "XYZZY", traced.key, FAKE_UPSTREAM_KEY, traced.upstream.url):
        assert secret.encode() not in exported


@pytest.mark.parametrize(
    "hostile",
    [
        "00-" + "0" * 32 + "-" + "1" * 16 + "-01",  # an all-zero trace id is invalid
        "00-" + "a" * 32 + "-" + "b" * 16 + "-01-extra;evil",  # version 00 has no tail
        "ff-" + "a" * 32 + "-" + "b" * 16 + "-01",  # version ff is forbidden
        "00-" + "A" * 32 + "-" + "b" * 16 + "-01",  # uppercase hex is not W3C
    ],
)
def test_a_hostile_traceparent_starts_a_new_trace_and_is_never_forwarded(
    traced: Traced, hostile: str
) -> None:
    response = traced.chat({"traceparent": hostile, "tracestate": "evil=1,x=y"})
    assert response.status_code == 200, response.text
    root, attempts = _tree(traced.receiver.wait_for(2))
    assert root.parent_span_id == "" and root.trace_id not in hostile.lower()
    [recorded] = traced.upstream.requests
    assert "tracestate" not in {k.lower() for k in recorded.headers}
    match = W3C.fullmatch(recorded.headers["traceparent"])
    assert match and match.groups()[:2] == (root.trace_id, attempts[0].span_id)


def test_the_sample_ratio_drops_new_traces_yet_context_still_goes_upstream(
    tmp_path: Path,
) -> None:
    for deployed in _deploy(tmp_path, "--otel-sample-ratio", "0"):
        response = deployed.chat()
        assert response.status_code == 200, response.text
        # Unsampled: no span exported; the upstream still gets a context, flagged unsampled.
        [header] = deployed.upstream_traceparents()
        match = W3C.fullmatch(header)
        assert match and not int(match[3], 16) & 1
        # A client's sampled trace is kept (parent-based sampling).
        parent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
        assert deployed.chat({"traceparent": parent}).status_code == 200
        spans = deployed.receiver.wait_for(2)
        assert {s.trace_id for s in spans} == {parent[3:35]}


def test_no_tracing_without_an_endpoint(tmp_path: Path) -> None:
    upstream = FakeUpstream().start()
    repo = PolicyRepo(tmp_path / "policy")
    key = new_secret()
    _policy(repo, upstream.url, key)
    no_sdk_endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""}
    gateway = GatewayProcess(repo.path, tmp_path / "state", env=no_sdk_endpoint).start()
    try:
        response = httpx.post(
            gateway.url + "/v1/chat/completions",
            json={"model": "traced", "messages": [{"role": "user", "content": "hi"}]},
            headers={
                "authorization": f"Bearer {key}",
                "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text
        # Off: no context is made up, and the client's is not passed on raw.
        assert "traceparent" not in {k.lower() for k in upstream.requests[0].headers}
    finally:
        gateway.stop()
        upstream.stop()
