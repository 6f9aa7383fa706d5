"""Stage ①: keys in every form an SDK sends them, refusals in the caller's protocol."""

from __future__ import annotations

from tests.inprocess.calls import GEMINI_HELLO, bearer, chat, message
from tests.inprocess.harness import InProcessGateway
from tests.inprocess.upstream import ScriptedUpstream


async def test_no_key_is_401_and_nothing_goes_upstream(
    gateway: InProcessGateway, upstream: ScriptedUpstream
) -> None:
    answer = await gateway.client.post(
        "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": []}
    )
    assert answer.status_code == 401
    assert "Authorization: Bearer" in answer.json()["error"]["message"]
    assert upstream.seen == []


async def test_unknown_key_is_401_in_each_protocol(gateway: InProcessGateway) -> None:
    openai = await chat(gateway, "mg-not-a-key")
    assert openai.status_code == 401
    assert openai.json()["error"]["code"] == "invalid_api_key"
    anthropic = await message(gateway, "mg-not-a-key")
    assert anthropic.status_code == 401
    assert anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "authentication_error"
    gemini = await gateway.client.post(
        "/v1beta/models/gemini-flash:generateContent",
        params={"key": "mg-not-a-key"},
        json=GEMINI_HELLO,
    )
    assert gemini.status_code == 401
    assert gemini.json()["error"]["status"] == "UNAUTHENTICATED"


async def test_model_outside_the_keys_allowlist_is_403(
    gateway: InProcessGateway, secrets: dict[str, str], upstream: ScriptedUpstream
) -> None:
    answer = await chat(gateway, secrets["alice"], "secret-model")
    assert answer.status_code == 403
    assert "secret-model" in answer.json()["error"]["message"]
    assert upstream.seen == []


async def test_unknown_model_is_404_even_for_a_key_that_may_not_use_it(
    gateway: InProcessGateway, secrets: dict[str, str]
) -> None:
    answer = await chat(gateway, secrets["alice"], "gpt-nonexistent")
    assert answer.status_code == 404
    assert "GET /v1/models" in answer.json()["error"]["message"]


async def test_key_in_each_sdk_form_is_accepted(
    gateway: InProcessGateway, secrets: dict[str, str], upstream: ScriptedUpstream
) -> None:
    alice = secrets["alice"]
    assert (await chat(gateway, alice)).status_code == 200
    assert (await message(gateway, alice)).status_code == 200
    gemini = await gateway.client.post(
        "/v1beta/models/gemini-flash:generateContent",
        headers={"x-goog-api-key": alice},
        json=GEMINI_HELLO,
    )
    assert gemini.status_code == 200, gemini.text
    assert upstream.hosts() == ["primary.test", "claude.test", "gemini.test"]
    # The client's key never goes upstream; the provider's credential does.
    assert all(alice not in str(seen.headers) for seen in upstream.seen)


async def test_admin_api_takes_an_admin_token_not_a_client_key(
    gateway: InProcessGateway, secrets: dict[str, str]
) -> None:
    as_client = await gateway.client.get("/admin/api/status", headers=bearer(secrets["alice"]))
    assert as_client.status_code == 403
    anonymous = await gateway.client.get("/admin/api/status")
    assert anonymous.status_code == 401
    as_admin = await gateway.client.get("/admin/api/status", headers=bearer(secrets["admin"]))
    assert as_admin.status_code == 200
    assert as_admin.json()["policy"]["state"] == "synced"


async def test_models_list_shows_only_what_the_key_may_use(
    gateway: InProcessGateway, secrets: dict[str, str]
) -> None:
    answer = await gateway.client.get("/v1/models", headers=bearer(secrets["alice"]))
    assert answer.status_code == 200
    ids = {model["id"] for model in answer.json()["data"]}
    assert "gpt-4o-mini" in ids and "claude-sonnet" in ids
    assert "secret-model" not in ids
