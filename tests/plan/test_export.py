"""GET /admin/api/requests: admin only, ids and numbers only, streamed; and `policy plan
--gateway` reading it."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.plan.trace import FIELDS
from tests.inprocess.calls import bearer
from tests.inprocess.conftest import clock, gateway, repo, secrets, upstream
from tests.inprocess.harness import InProcessGateway
from tests.plan.fixture import T, write_log

__all__ = ["clock", "gateway", "repo", "secrets", "upstream"]  # the in-process fixtures

CANARY = "PROMPT-CANARY-7f3a"


async def test_the_export_is_for_admins_only(
    gateway: InProcessGateway, secrets: dict[str, str]
) -> None:
    client = gateway.client
    assert (await client.get("/admin/api/requests")).status_code == 401
    assert (await client.get("/admin/api/requests", headers=bearer("mg-wrong"))).status_code == 401
    client_key = await client.get("/admin/api/requests", headers=bearer(secrets["alice"]))
    assert client_key.status_code == 403
    assert secrets["alice"] not in client_key.text


async def test_rows_carry_ids_and_numbers_never_secrets_or_prompts(
    gateway: InProcessGateway, secrets: dict[str, str]
) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": CANARY}]}
    sent = await gateway.client.post(
        "/v1/chat/completions", headers=bearer(secrets["alice"]), json=body
    )
    assert sent.status_code == 200
    await gateway.state.recorder.request_log.flush()
    got = await gateway.client.get("/admin/api/requests", headers=bearer(secrets["admin"]))
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in got.text.splitlines()]
    assert len(rows) == 1 and set(rows[0]) == set(FIELDS)
    assert (rows[0]["key_id"], rows[0]["model"], rows[0]["status"]) == ("alice", "gpt-4o-mini", 200)
    for secret in secrets.values():
        assert secret not in got.text
        assert hashlib.sha256(secret.encode()).hexdigest() not in got.text
    assert CANARY not in got.text and "request_id" not in got.text


async def test_the_export_streams_in_chunks_and_filters_by_since(
    gateway: InProcessGateway, secrets: dict[str, str]
) -> None:
    state_dir = gateway.state.recorder.request_log.path.parent
    count = 9_000  # more than four batches
    write_log(state_dir, [(T + i, "bob", "gpt", 200, None, 10, 5, 5) for i in range(count)])
    chunks = lines = 0
    async with gateway.client.stream(
        "GET", "/admin/api/requests", headers=bearer(secrets["admin"])
    ) as got:
        assert got.status_code == 200
        assert got.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in got.headers
        async for chunk in got.aiter_raw():
            chunks += 1
            lines += chunk.count(b"\n")
    assert lines == count and chunks > 1
    since = await gateway.client.get(
        "/admin/api/requests",
        params={"since": str(T + count - 10)},
        headers=bearer(secrets["admin"]),
    )
    assert len(since.text.splitlines()) == 10
    bad = await gateway.client.get(
        "/admin/api/requests", params={"since": "soon"}, headers=bearer(secrets["admin"])
    )
    assert bad.status_code == 400


async def test_plan_reads_a_gateways_export(
    gateway: InProcessGateway,
    secrets: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state_dir = gateway.state.recorder.request_log.path.parent
    write_log(state_dir, [(T + i, "alice", "gpt-4o-mini", 200, None, 10, 5, 5) for i in range(30)])
    repo = str(gateway.settings.policy_repo)
    url = str(gateway.client.base_url)
    argv = ["policy", "plan", "HEAD", "HEAD", "--repo", repo, "--since", "2025-01-01"]
    argv += ["--gateway", url, "--admin-token", secrets["admin"], "--format", "json"]
    code = await asyncio.to_thread(main, argv)
    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out)["replayed"] == 30
    argv[argv.index(secrets["admin"])] = secrets["alice"]
    assert await asyncio.to_thread(main, argv) == 2
    err = capsys.readouterr().err
    assert "403" in err and secrets["alice"] not in err
