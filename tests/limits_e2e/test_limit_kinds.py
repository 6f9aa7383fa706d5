"""Each kind of limit through the server, in-process and with Redis: rpm, tpm, concurrency,
day and month quotas, the x-ratelimit headers, and tiers with per-key overrides."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.limits_e2e.calls import (
    CHAT_PATH,
    HI,
    PER_REQUEST,
    assert_refused,
    assert_request_trio,
    chat_body,
    padded_body,
    seconds,
    seconds_to_midnight,
    wait_applied,
)
from tests.limits_e2e.conftest import Served
from tests.limits_e2e.policy import KeySpec
from tests.support.fake_upstream import FakeUpstream

SDK_HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def test_rpm_headers_count_down_then_429(served: Served, upstream: FakeUpstream) -> None:
    for remaining in (4, 3, 2, 1, 0):
        response = served.chat("rpm5")
        assert response.status_code == 200
        assert_request_trio(response, 5, remaining)
        assert "x-ratelimit-limit-tokens" not in response.headers  # no tpm on this key
    refused = served.chat("rpm5")
    assert_refused(refused)
    assert_request_trio(refused, 5, 0)
    assert "5 requests per minute" in refused.json()["error"]["message"]
    assert len(upstream.requests) == 5


def test_tpm_reserves_the_estimate_and_settles_to_the_real_tokens(
    served: Served, upstream: FakeUpstream
) -> None:
    # A body of 400 bytes is estimated at 100 prompt tokens; the upstream reports 18.
    body = padded_body(400)
    estimate, tpm = 100, 250
    settled = 0
    # Without settlement to 18, the third request would already be refused (3 x 100 > 250).
    while settled + estimate <= tpm:
        response = served.chat("tpm", body)
        assert response.status_code == 200, response.text
        headers = response.headers
        assert headers["x-ratelimit-limit-tokens"] == str(tpm)
        assert headers["x-ratelimit-remaining-tokens"] == str(tpm - settled - estimate)
        assert 0 < seconds(headers["x-ratelimit-reset-tokens"]) <= 60
        assert "x-ratelimit-limit-requests" not in headers  # no rpm on this key
        settled += PER_REQUEST
    assert settled == 9 * PER_REQUEST
    assert served.usage("tpm")["tpm"] == {"limit": tpm, "used": settled}
    refused = served.chat("tpm", body)
    assert_refused(refused, unit="tokens")
    assert_refused(refused)  # the request trio too, though the key has no rpm
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-remaining-tokens"] == str(tpm - settled)
    assert "250 tokens per minute" in refused.json()["error"]["message"]
    small = served.chat("tpm")  # a smaller estimate still fits
    assert small.status_code == 200


def test_tpm_counts_the_reservation_of_a_request_in_flight(
    served: Served, upstream: FakeUpstream
) -> None:
    upstream.hold_stream_after_first_chunk = True
    upstream.release_stream.clear()
    secret = served.secret("tpm-held")
    with httpx.Client(base_url=served.url, timeout=30) as client:
        request = client.build_request(
            "POST",
            CHAT_PATH,
            json=padded_body(400, stream=True),  # reserves 100
            headers={"authorization": f"Bearer {secret}"},
        )
        held = client.send(request, stream=True)
        assert held.headers["x-ratelimit-remaining-tokens"] == "150"
        chunks = held.iter_raw()
        next(chunks)
        beside = served.chat("tpm-held", padded_body(400))  # 100 more; settles at 18
        assert beside.headers["x-ratelimit-remaining-tokens"] == "50"
        upstream.release_stream.set()
        assert b"[DONE]" in b"".join(chunks)
        held.close()
    after = served.chat("tpm-held", padded_body(400))
    assert after.headers["x-ratelimit-remaining-tokens"] == str(250 - 2 * PER_REQUEST - 100)


def test_concurrency_counts_requests_in_flight(served: Served, upstream: FakeUpstream) -> None:
    upstream.hold_stream_after_first_chunk = True
    upstream.release_stream.clear()
    secret = served.secret("conc")
    opened: list[tuple[httpx.Response, Iterator[bytes]]] = []
    with httpx.Client(base_url=served.url, timeout=30) as client:
        for _ in range(2):
            request = client.build_request(
                "POST",
                CHAT_PATH,
                json=chat_body(stream=True),
                headers={"authorization": f"Bearer {secret}"},
            )
            response = client.send(request, stream=True)
            assert response.status_code == 200
            chunks = response.iter_raw()
            next(chunks)  # the first chunk arrived: the request is in flight
            opened.append((response, chunks))
        refused = served.chat("conc")
        assert_refused(refused)
        assert refused.headers["x-ratelimit-limit-requests"] == "2"  # the concurrency limit
        assert "at most 2 at once" in refused.json()["error"]["message"]
        assert served.usage("conc")["max_concurrency"] == {"limit": 2, "used": 2}
        upstream.release_stream.set()
        for response, chunks in opened:
            assert b"[DONE]" in b"".join(chunks)
            response.close()
    assert served.chat("conc").status_code == 200
    assert served.usage("conc")["max_concurrency"]["used"] == 0


def test_day_quota_refuses_with_insufficient_quota_in_each_protocol(served: Served) -> None:
    assert served.chat("day").status_code == 200  # 18 of 30
    assert served.chat("day").status_code == 200  # admitted below the quota: 36 of 30
    refused = served.chat("day")
    assert_refused(refused, "insufficient_quota")  # the request trio, though no rpm
    assert "daily token quota" in refused.json()["error"]["message"]
    # Retry-After points at the next 00:00 UTC.
    assert int(refused.headers["retry-after"]) == pytest.approx(seconds_to_midnight(), abs=5)
    assert served.usage("day")["tokens_per_day"]["used"] == 2 * PER_REQUEST

    secret = served.secret("day")
    anthropic = httpx.post(
        served.url + "/v1/messages",
        json={"model": "gpt-4o-mini", "max_tokens": 16, "messages": HI},
        headers={"x-api-key": secret, "anthropic-version": "2023-06-01"},
    )
    assert anthropic.status_code == 429
    assert anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "rate_limit_error"
    assert "quota" in anthropic.json()["error"]["message"]
    gemini = httpx.post(
        served.url + "/v1beta/models/gpt-4o-mini:generateContent",
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        headers={"x-goog-api-key": secret},
    )
    assert gemini.status_code == 429
    error = gemini.json()["error"]
    assert error["code"] == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    assert "quota" in error["message"]
    for response in (anthropic, gemini):
        assert int(response.headers["retry-after"]) >= 1


def test_month_quota_through_the_openai_sdk(served: Served) -> None:
    with openai.OpenAI(
        base_url=served.url + "/v1", api_key=served.secret("month"), max_retries=0
    ) as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=SDK_HI)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="gpt-4o-mini", messages=SDK_HI)
    assert caught.value.code == "insufficient_quota"
    assert caught.value.type == "insufficient_quota"
    assert "monthly token quota" in caught.value.message
    report = served.usage("month")["tokens_per_month"]
    assert isinstance(report, dict) and report["used"] == PER_REQUEST


def test_a_finished_stream_counts_before_the_next_request(served: Served) -> None:
    with openai.OpenAI(
        base_url=served.url + "/v1", api_key=served.secret("stream-day"), max_retries=0
    ) as client:
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=SDK_HI,
                stream=True,
            )
        )
        assert chunks and all(chunk.usage is None for chunk in chunks)  # the extra chunk hidden
        with pytest.raises(openai.RateLimitError) as caught:  # no pause in between
            client.chat.completions.create(model="gpt-4o-mini", messages=SDK_HI)
    assert caught.value.code == "insufficient_quota"


def test_tiers_default_and_overrides_field_by_field(served: Served) -> None:
    expected = {  # key: rpm, tpm, tokens_per_day, tokens_per_month
        "gold": (6, 100000, 1000, None),  # a tier replaces the default as a whole
        "gold-rpm2": (2, 100000, 1000, None),  # rpm overridden, the rest still the tier's
        "plain": (None, None, None, 5000),  # no tier: the default
        "plain-tpm": (None, 5000, None, 5000),  # an override over the default
    }
    for key_id, (rpm, tpm, per_day, per_month) in expected.items():
        response = served.chat(key_id)
        assert response.status_code == 200
        if rpm is None:
            assert "x-ratelimit-limit-requests" not in response.headers
        else:
            assert_request_trio(response, rpm, rpm - 1)
        assert response.headers.get("x-ratelimit-limit-tokens") == (str(tpm) if tpm else None)
        report = served.usage(key_id)
        assert report["rpm"] == {"limit": rpm, "used": 1 if rpm else 0}
        assert report["tpm"] == {"limit": tpm, "used": PER_REQUEST if tpm else 0}
        for field, limit in (("tokens_per_day", per_day), ("tokens_per_month", per_month)):
            period = report[field]
            assert isinstance(period, dict)
            assert (period["limit"], period["used"]) == (limit, PER_REQUEST), field
    assert served.chat("gold-rpm2").status_code == 200
    assert_refused(served.chat("gold-rpm2"))
    assert served.chat("gold").status_code == 200  # the tier's own rpm 6 still has room


def test_a_limit_change_by_commit_keeps_the_count(served: Served) -> None:
    for _ in range(5):
        assert served.chat("changing").status_code == 200
    commit = served.policy.set_key("changing", KeySpec(limits="{rpm: 6}"))
    wait_applied(served.url, served.policy.admin, commit)
    last = served.chat("changing")
    assert last.status_code == 200
    assert_request_trio(last, 6, 0)
    assert_refused(served.chat("changing"))
    assert served.usage("changing")["rpm"] == {"limit": 6, "used": 6}
