"""Token credentials through a real gateway: OAuth2 refresh grants and a service account."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

from tests.resilience.conftest import FILES, SA_EMAIL, SECRETS, Rig


def test_an_oauth2_token_is_obtained_once_and_sent_as_bearer(r: Rig) -> None:
    for _ in range(3):
        assert r.chat("r-oauth").status_code == 200
    assert r.upstream_keys() == ["tok-oauth-1"] * 3
    (issued,) = [i for i in r.tokens.issued if i.name == "oauth"]
    assert issued.form["refresh_token"] == FILES["oauth.refresh"]
    assert issued.form["client_secret"] == SECRETS["OAUTH_SECRET"]
    entry = r.credential("oauth", "oauth2:file:oauth.refresh")
    assert entry is not None and entry["state"] == "ok" and entry["token_refreshes"] == 1
    status = json.dumps(r.status())
    assert "tok-oauth-1" not in status and FILES["oauth.refresh"] not in status
    assert r.gateway.logs().count("tok-oauth") == 0


def test_twenty_concurrent_requests_share_one_refresh(r: Rig) -> None:
    with ThreadPoolExecutor(20) as pool:  # the token endpoint takes 0.5 s to answer
        statuses = list(pool.map(lambda _: r.chat("r-oauth-crowd").status_code, range(20)))
    assert statuses == [200] * 20
    assert r.tokens.count("crowd") == 1
    assert r.upstream_keys() == ["tok-crowd-1"] * 20


def test_an_expiring_token_is_refreshed(r: Rig) -> None:
    assert r.chat("r-oauth-short").status_code == 200  # expires_in: 4, refreshed after 2 s
    assert r.chat("r-oauth-short").status_code == 200
    time.sleep(2.1)
    assert r.chat("r-oauth-short").status_code == 200
    assert r.upstream_keys() == ["tok-short-1", "tok-short-1", "tok-short-2"]


def test_a_refused_grant_removes_the_credential_until_its_file_changes(r: Rig) -> None:
    response = r.chat("r-oauth-bad")  # the token endpoint answers 400 invalid_grant
    assert response.status_code == 502
    assert "no usable upstream credential" in response.json()["error"]["message"]
    entry = r.credential("oauth-bad", "oauth2:file:bad.refresh")
    assert entry is not None and entry["state"] == "removed"
    assert "400 invalid_grant" in str(entry["reason"])
    assert r.chat("r-oauth-bad").status_code == 502
    assert r.tokens.count("bad") == 1, "a refused grant is not asked again"
    assert "r-oauth-bad" not in r.listed()
    r.tokens.behave("bad")  # the operator fixed the grant and writes the new refresh token
    (r.creds / "bad.refresh").write_text("refresh-bad-renewed-0123456789\n")
    time.sleep(1.1)
    assert r.chat("r-oauth-bad").status_code == 200
    assert r.tokens.issued[-1].form["refresh_token"] == "refresh-bad-renewed-0123456789"
    assert r.upstream_keys() == ["tok-bad-2"]


def test_a_failing_token_endpoint_cools_the_credential(r: Rig) -> None:
    response = r.chat("r-oauth-down")  # the token endpoint answers 500; cooldown_s: 5
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    entry = r.credential("oauth-down", "oauth2:file:down.refresh")
    assert entry is not None and entry["state"] == "cooling"
    assert entry["reason"] == "token refresh failed: the token endpoint answered 500 server_error"
    assert r.chat("r-oauth-down").status_code == 503
    assert r.tokens.count("down") == 1
    assert r.upstream.requests == []


def test_a_service_account_gets_a_token_with_a_signed_jwt(r: Rig) -> None:
    response = r.call("gemini", "r-vertex", stream=False)
    assert response.status_code == 200, response.text
    (recorded,) = r.upstream.requests
    headers = {k.lower(): v for k, v in recorded.headers.items()}
    assert headers["authorization"] == "Bearer tok-sa-1"
    assert "x-goog-api-key" not in headers
    (issued,) = [i for i in r.tokens.issued if i.name == "sa"]
    assert issued.claims is not None
    assert issued.claims["iss"] == SA_EMAIL
    assert issued.claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert issued.claims["aud"] == r.tokens.url("sa")
