"""Token credentials: obtained once, reused, refreshed when the (fake) clock nears expiry."""

from __future__ import annotations

from tests.inprocess.calls import chat
from tests.inprocess.harness import InProcessGateway
from tests.inprocess.upstream import Fault, ScriptedUpstream
from tests.support.fake_clock import FakeClock


def _authorizations(upstream: ScriptedUpstream) -> list[str]:
    return [s.headers["authorization"] for s in upstream.seen if s.host == "tokens.test"]


async def test_token_is_reused_then_refreshed_before_it_expires(
    gateway: InProcessGateway,
    secrets: dict[str, str],
    upstream: ScriptedUpstream,
    clock: FakeClock,
) -> None:
    alice = secrets["alice"]
    assert (await chat(gateway, alice, "gpt-token")).status_code == 200
    assert (await chat(gateway, alice, "gpt-token")).status_code == 200
    assert _authorizations(upstream) == ["Bearer token-1", "Bearer token-1"]
    clock.advance(600 - 60)  # the token lives 600 s; it is refreshed 60 s early
    assert (await chat(gateway, alice, "gpt-token")).status_code == 200
    assert _authorizations(upstream)[-1] == "Bearer token-2"
    assert upstream.tokens_issued == 2


async def test_a_failed_refresh_cools_the_credential(
    gateway: InProcessGateway,
    secrets: dict[str, str],
    upstream: ScriptedUpstream,
    clock: FakeClock,
) -> None:
    upstream.fail_next("auth.test", Fault(503))
    failed = await chat(gateway, secrets["alice"], "gpt-token")
    assert failed.status_code == 503
    assert "cooling" in failed.json()["error"]["message"]
    clock.advance(61)  # the provider's cooldown_s is 60
    assert (await chat(gateway, secrets["alice"], "gpt-token")).status_code == 200
