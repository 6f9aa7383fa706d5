"""Retries, failover across provider types, connection failures, deadlines, strategies."""

from __future__ import annotations

import time

from tests.resilience.conftest import SECRETS, Rig
from tests.support.fake_replies import text_of
from tests.support.fake_upstream import Fault

ANSWER = "".join(text_of(6))


def test_5xx_then_success_is_retried_on_the_same_target(r: Rig) -> None:
    r.upstream.fail_next(Fault(500), Fault(503))
    response = r.chat("r-retry")
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == ANSWER
    assert len(r.upstream.requests) == 3  # two failures, then the answer (max_retries: 2)


def test_retries_are_bounded_by_max_retries(r: Rig) -> None:
    r.upstream.fail_next(*[Fault(500)] * 5)
    response = r.chat("r-retry")
    assert response.status_code == 502
    assert len(r.upstream.requests) == 3
    assert "upstream answered 500" in response.json()["error"]["message"]


def test_failover_to_another_provider_type_is_translated(r: Rig) -> None:
    r.upstream.fail_next(Fault(500))
    response = r.chat("r-cross")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == ANSWER
    assert [q.path for q in r.upstream.requests] == ["/v1/chat/completions", "/v1/messages"]
    assert r.upstream.requests[1].body is not None
    assert r.upstream.requests[1].body["model"] == "claude-m"


def test_streamed_failover_to_another_provider_type(r: Rig) -> None:
    r.upstream.fail_next(Fault(502))
    response = r.chat("r-cross", stream=True)
    assert response.status_code == 200
    assert response.text.endswith("data: [DONE]\n\n")
    assert "chat.completion.chunk" in response.text and '"error"' not in response.text
    assert [q.path for q in r.upstream.requests] == ["/v1/chat/completions", "/v1/messages"]


def test_gemini_client_fails_over_to_anthropic(r: Rig) -> None:
    r.upstream.fail_next(Fault(500))
    response = r.call("gemini", "r-cross", stream=False)
    assert response.status_code == 200, response.text
    assert response.json()["candidates"][0]["content"]["parts"][0]["text"] == ANSWER


def test_connection_refused_fails_over(r: Rig) -> None:
    started = time.monotonic()
    response = r.chat("r-refused")
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 3
    assert r.upstream_models() == ["m"]  # only the second target reached the fake upstream


def test_a_client_error_is_passed_back_and_never_retried_elsewhere(r: Rig) -> None:
    r.upstream.fail_next(Fault(422, body={"error": {"message": "messages[0].content is invalid"}}))
    response = r.chat("r-client-4xx")
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "messages[0].content is invalid"
    assert len(r.upstream.requests) == 1


def test_the_route_deadline_bounds_retries(r: Rig) -> None:
    r.upstream.fail_next(Fault(500, delay_s=0.15), *[Fault(500, delay_s=0.15)] * 10)
    started = time.monotonic()
    response = r.chat("r-deadline")
    elapsed = time.monotonic() - started
    assert response.status_code == 502
    assert "deadline of 0.5 s" in response.json()["error"]["message"]
    assert elapsed < 2.0
    assert 1 <= len(r.upstream.requests) < 11  # max_retries 10 would have made 11


def test_the_route_deadline_cuts_a_slow_first_byte(r: Rig) -> None:
    r.upstream.fail_next(Fault(delay_s=3))
    started = time.monotonic()
    response = r.chat("r-deadline")
    assert response.status_code == 502
    assert time.monotonic() - started < 2.0
    assert len(r.upstream.requests) == 1


def test_round_robin_targets_are_exact_over_n_requests(r: Rig) -> None:
    for _ in range(30):
        assert r.chat("r-rr").status_code == 200
    models = r.upstream_models()
    assert {m: models.count(m) for m in "abc"} == {"a": 10, "b": 10, "c": 10}
    start = models.index("a")
    assert models[start : start + 3] == ["a", "b", "c"]


def test_round_robin_credentials_are_exact_over_n_requests(r: Rig) -> None:
    for _ in range(30):
        assert r.chat("r-pool").status_code == 200
    used = r.upstream_keys()
    assert {k: used.count(SECRETS[k]) for k in ("K_1", "K_2", "K_3")} == {
        "K_1": 10,
        "K_2": 10,
        "K_3": 10,
    }


def test_a_glob_route_puts_the_matched_part_into_the_target(r: Rig) -> None:
    response = r.chat("glob-mini")
    assert response.status_code == 200
    assert r.upstream_models() == ["up-mini"]
