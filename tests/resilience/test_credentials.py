"""Credential pools through a real gateway: cooldowns, removal, 503s, status, model lists."""

from __future__ import annotations

import json
import time

from tests.resilience.conftest import FILES, SECRETS, Rig
from tests.support.fake_upstream import Fault

OPENAI_QUOTA = {
    "error": {
        "message": "You exceeded your current quota",
        "type": "insufficient_quota",
        "code": "insufficient_quota",
    }
}
GEMINI_EXHAUSTED = {
    "error": {
        "code": 429,
        "status": "RESOURCE_EXHAUSTED",
        "message": "Resource has been exhausted",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}],
    }
}
GEMINI_BAD_KEY = {
    "error": {
        "code": 400,
        "status": "INVALID_ARGUMENT",
        "message": "API key not valid. Please pass a valid API key.",
        "details": [{"reason": "API_KEY_INVALID"}],
    }
}


def assert_no_secrets(text: str) -> None:
    for secret in [*SECRETS.values(), *FILES.values()]:
        assert secret not in text


def test_429_cooldown_is_exact_to_the_second_and_ends(r: Rig) -> None:
    r.upstream.fail_next(Fault(429, headers={"retry-after": "2"}))
    first = r.chat("r-cool")  # cooldown_s is 30: the upstream's 2 s replace it
    started = time.monotonic()
    assert first.status_code == 503
    assert first.headers["retry-after"] == "2"
    time.sleep(1.0)
    second = r.chat("r-cool")
    assert second.status_code == 503 and second.headers["retry-after"] == "1"
    time.sleep(max(0.0, 2.05 - (time.monotonic() - started)))
    assert r.chat("r-cool").status_code == 200
    assert len(r.upstream.requests) == 2  # not called while cooling


def test_429_without_retry_after_cools_for_cooldown_s(r: Rig) -> None:
    r.upstream.fail_next(Fault(429))
    response = r.chat("r-cool-default")
    assert response.status_code == 503 and response.headers["retry-after"] == "3"
    entry = r.credential("cool-default", "env:K_A")
    assert entry is not None and entry["state"] == "cooling"
    assert entry["reason"] == "rate limited by the upstream (429)"


def test_a_longer_retry_after_replaces_cooldown_s(r: Rig) -> None:
    r.upstream.fail_next(Fault(429, headers={"retry-after": "40"}))
    response = r.chat("r-cool-long")  # cooldown_s is 1
    assert response.status_code == 503 and response.headers["retry-after"] == "40"
    assert "r-cool-long" in r.listed(), "a cooling route stays listed: it recovers by itself"


def test_every_target_cooling_is_a_503_with_the_soonest_recovery(r: Rig) -> None:
    r.upstream.fail_next(
        Fault(429, headers={"retry-after": "9"}), Fault(429, headers={"retry-after": "4"})
    )
    first = r.chat("r-all-cool")
    assert first.status_code == 503 and first.headers["retry-after"] == "4"
    again = r.chat("r-all-cool")
    assert again.status_code == 503 and again.headers["retry-after"] in ("3", "4")
    assert len(r.upstream.requests) == 2


def test_an_openai_quota_error_cools_the_credential_and_moves_on(r: Rig) -> None:
    r.upstream.fail_next(Fault(429, body=OPENAI_QUOTA))
    response = r.chat("r-quota")
    assert response.status_code == 200, response.text
    assert r.upstream_keys() == [SECRETS["K_1"], SECRETS["K_2"]]
    entry = r.credential("quota", "env:K_1")
    assert entry is not None and entry["state"] == "cooling"
    assert "quota" in entry["reason"] and 50 < entry["cooling_down_s"] <= 60


def test_a_gemini_resource_exhausted_cools_for_its_retry_delay(r: Rig) -> None:
    r.upstream.fail_next(Fault(429, body=GEMINI_EXHAUSTED))
    response = r.call("gemini", "r-gem-quota", stream=False)
    assert response.status_code == 200, response.text
    assert r.upstream_keys() == [SECRETS["K_1"], SECRETS["K_2"]]
    entry = r.credential("gem-quota", "env:K_1")
    assert entry is not None and 15 < entry["cooling_down_s"] <= 17


def test_fill_first_uses_the_first_credential_until_it_cools(r: Rig) -> None:
    for _ in range(3):
        assert r.chat("r-fill").status_code == 200
    r.upstream.fail_next(Fault(429, headers={"retry-after": "30"}))
    for _ in range(2):
        assert r.chat("r-fill").status_code == 200
    assert r.upstream_keys() == [SECRETS["K_1"]] * 4 + [SECRETS["K_2"]] * 2


def test_a_refused_credential_is_removed_until_its_file_changes(r: Rig) -> None:
    r.upstream.fail_next(Fault(401, body={"error": {"message": "Incorrect API key"}}))
    assert r.chat("r-refuse").status_code == 200  # the next credential served it
    assert r.upstream_keys() == [FILES["refuse.key"], SECRETS["K_2"]]
    entry = r.credential("refuse", "file:refuse.key")
    assert entry is not None and entry["state"] == "removed"
    assert entry["removed"] == "refused by the upstream (401)"
    assert_no_secrets(json.dumps(r.status()))
    assert r.chat("r-refuse").status_code == 200
    assert r.upstream_keys()[-1] == SECRETS["K_2"], "the removed credential is skipped"
    (r.creds / "refuse.key").write_text("file-key-rotated-0123456789\n")
    time.sleep(1.1)  # credential files are re-read at most once per second
    assert r.chat("r-refuse").status_code == 200
    assert r.upstream_keys()[-1] == "file-key-rotated-0123456789"
    assert r.credential("refuse", "file:refuse.key") is None


def test_a_route_whose_credentials_are_all_refused_leaves_the_model_lists(r: Rig) -> None:
    assert "r-gem-invalid" in r.listed() and "r-gem-invalid" in r.listed(gemini=True)
    r.upstream.fail_next(Fault(400, body=GEMINI_BAD_KEY))
    response = r.chat("r-gem-invalid")
    assert response.status_code == 502
    assert "no usable upstream credential" in response.json()["error"]["message"]
    assert_no_secrets(response.text)
    assert "r-gem-invalid" not in r.listed()
    assert "r-gem-invalid" not in r.listed(gemini=True)
    why = r.status()["unavailable_routes"]["r-gem-invalid"]
    assert "refused by the upstream (400)" in why and "env:K_A" in why
    again = r.chat("r-gem-invalid")
    assert again.status_code == 502 and len(r.upstream.requests) == 1


def test_a_route_with_an_unresolvable_credential_is_not_listed(r: Rig) -> None:
    assert "r-missing" not in r.listed()
    assert "r-rr" in r.listed()
    why = r.status()["unavailable_routes"]["r-missing"]
    assert "set the environment variable K_UNSET" in why
    response = r.chat("r-missing")
    assert response.status_code == 502
    assert r.upstream.requests == []
