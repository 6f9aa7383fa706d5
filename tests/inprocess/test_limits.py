"""Stage ②: a key over its rate is refused with 429 until the (fake) clock moves on."""

from __future__ import annotations

from tests.inprocess.calls import chat, key_totals
from tests.inprocess.harness import InProcessGateway
from tests.inprocess.upstream import ScriptedUpstream
from tests.support.fake_clock import FakeClock


async def test_over_rpm_is_429_until_the_minute_has_passed(
    gateway: InProcessGateway,
    secrets: dict[str, str],
    upstream: ScriptedUpstream,
    clock: FakeClock,
) -> None:
    limited = secrets["limited"]
    assert (await chat(gateway, limited)).status_code == 200
    assert (await chat(gateway, limited)).status_code == 200
    refused = await chat(gateway, limited)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "rpm" in refused.json()["error"]["message"]
    assert len(upstream.seen) == 2  # the refused request never left the gateway
    clock.advance(61)
    again = await chat(gateway, limited)
    assert again.status_code == 200, again.text


async def test_settled_tokens_are_what_the_upstream_reported(
    gateway: InProcessGateway, secrets: dict[str, str]
) -> None:
    assert (await chat(gateway, secrets["alice"])).status_code == 200
    totals = await key_totals(gateway, secrets["admin"], "alice")
    assert (totals["requests"], totals["prompt_tokens"], totals["completion_tokens"]) == (1, 11, 7)
