"""The admin API client against a real gateway: answers, refusals, an absent gateway."""

from __future__ import annotations

import pytest

from tests.conftest import Deployment
from tests.support.gateway_process import free_port
from tui.client import OPENED, AdminClient, AdminError, TokenRefused


async def test_status_usage_sync_and_events(deployment: Deployment) -> None:
    d = deployment
    client = AdminClient(d.gateway.url, d.keys["admin"])
    try:
        status = await client.status()
        assert status["policy"]["commit"] == d.repo.head()
        usage = await client.usage()
        assert {k["key_id"] for k in usage["keys"]} == {"alice", "bob"}
        assert (await client.sync())["policy"]["state"] == "synced"
        stream = client.events(None)
        first = await anext(stream)
        assert first.event == OPENED
        await stream.aclose()
        assert d.keys["admin"] not in repr(client)
    finally:
        await client.aclose()

    # One gateway for the refusals too (each start costs seconds).
    for secret, status_code in (
        (d.keys["alice"], 403),
        ("mg-not-a-known-token-0123456789abcdef", 401),
    ):
        refused = AdminClient(d.gateway.url, secret)
        try:
            with pytest.raises(TokenRefused) as caught:
                await refused.status()
            assert caught.value.status == status_code
            assert "admins:" in str(caught.value) and secret not in str(caught.value)
            with pytest.raises(TokenRefused):
                await anext(refused.events(None))
        finally:
            await refused.aclose()


async def test_an_absent_gateway_is_named_with_what_to_do() -> None:
    client = AdminClient(f"http://127.0.0.1:{free_port()}", "mg-whatever")
    try:
        with pytest.raises(AdminError, match="is `modelgate serve` running"):
            await client.usage()
    finally:
        await client.aclose()
