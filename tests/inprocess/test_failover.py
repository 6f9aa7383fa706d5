"""Stage ⑤: cooldown after an upstream 429, recovery when the clock passes it, failover."""

from __future__ import annotations

from tests.inprocess.calls import bearer, chat
from tests.inprocess.harness import InProcessGateway
from tests.inprocess.upstream import Fault, ScriptedUpstream
from tests.support.fake_clock import FakeClock

RATE_LIMITED = Fault(429, headers={"retry-after": "30"})


async def test_a_429_cools_the_credential_and_the_backup_serves_until_it_recovers(
    gateway: InProcessGateway,
    secrets: dict[str, str],
    upstream: ScriptedUpstream,
    clock: FakeClock,
) -> None:
    alice = secrets["alice"]
    upstream.fail_next("primary.test", RATE_LIMITED)
    first = await chat(gateway, alice, "gpt-failover")
    assert first.status_code == 200, first.text
    assert upstream.hosts() == ["primary.test", "backup.test"]
    # Cooling: the primary is not even tried.
    assert (await chat(gateway, alice, "gpt-failover")).status_code == 200
    assert upstream.hosts()[2:] == ["backup.test"]
    clock.advance(31)
    assert (await chat(gateway, alice, "gpt-failover")).status_code == 200
    assert upstream.hosts()[3:] == ["primary.test"]


async def test_every_credential_cooling_is_503_with_retry_after(
    gateway: InProcessGateway,
    secrets: dict[str, str],
    upstream: ScriptedUpstream,
    clock: FakeClock,
) -> None:
    alice = secrets["alice"]
    upstream.fail_next("primary.test", RATE_LIMITED)
    cooling = await chat(gateway, alice)
    assert cooling.status_code == 503
    assert cooling.headers["retry-after"] == "30"
    clock.advance(20)
    still = await chat(gateway, alice)
    assert (still.status_code, still.headers["retry-after"]) == (503, "10")
    assert len(upstream.seen) == 1
    status = await gateway.client.get("/admin/api/status", headers=bearer(secrets["admin"]))
    [credential] = status.json()["credentials"]
    assert (credential["provider"], credential["state"]) == ("primary", "cooling")
    clock.advance(10)
    assert (await chat(gateway, alice)).status_code == 200


async def test_a_failing_target_fails_over_and_a_client_error_does_not(
    gateway: InProcessGateway, secrets: dict[str, str], upstream: ScriptedUpstream
) -> None:
    alice = secrets["alice"]
    upstream.fail_next("primary.test", Fault(500))
    assert (await chat(gateway, alice, "gpt-failover")).status_code == 200
    assert upstream.hosts() == ["primary.test", "backup.test"]
    bad = {"error": {"message": "messages: too long", "type": "invalid_request_error"}}
    upstream.fail_next("primary.test", Fault(400, body=bad))
    refused = await chat(gateway, alice, "gpt-failover")
    assert refused.status_code == 400
    assert "too long" in refused.json()["error"]["message"]
    assert upstream.hosts()[2:] == ["primary.test"]  # never retried elsewhere


async def test_a_refused_credential_is_taken_out(
    gateway: InProcessGateway, secrets: dict[str, str], upstream: ScriptedUpstream
) -> None:
    alice = secrets["alice"]
    upstream.fail_next("primary.test", Fault(401))
    assert (await chat(gateway, alice, "gpt-failover")).status_code == 200
    assert (await chat(gateway, alice, "gpt-failover")).status_code == 200
    assert upstream.hosts() == ["primary.test", "backup.test", "backup.test"]
    status = await gateway.client.get("/admin/api/status", headers=bearer(secrets["admin"]))
    states = {c["provider"]: c["state"] for c in status.json()["credentials"]}
    assert states == {"primary": "removed"}
    assert "gpt-4o-mini" in str(status.json()["unavailable_routes"])
