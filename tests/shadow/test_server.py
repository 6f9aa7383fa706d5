"""Shadow limits through the real server (`modelgate serve` subprocesses, a fake upstream):
served and reported on every surface, then enforced by a one-line commit, counts kept;
two gateways on one Redis."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.limits_e2e.calls import PER_REQUEST, chat, wait_applied, wait_for
from tests.limits_e2e.conftest import Served, serving
from tests.limits_e2e.policy import KeySpec, LimitsPolicy
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.redis_server import RedisServer

TRIAL = "{enforce: shadow, rpm: 2, tokens_per_day: 30}"
"""30 tokens: the fake upstream reports 18 per request, so the 3rd request is past it."""
SPECS = {"trial": KeySpec(limits=TRIAL), "beside": KeySpec(limits="{rpm: 3, shadow: {rpm: 1}}")}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module", params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    upstream: FakeUpstream,
) -> Iterator[Served]:
    with serving(request.param, tmp_path_factory, upstream, SPECS) as gateway:
        yield gateway


def admin_get(url: str, admin: str, path: str, **params: str) -> httpx.Response:
    response = httpx.get(
        url + path, params=params, headers={"authorization": f"Bearer {admin}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response


def usage(url: str, admin: str, key_id: str) -> dict[str, Any]:
    body = admin_get(url, admin, "/admin/api/usage", key=key_id).json()
    assert isinstance(body, dict)
    return body


def shadow_metric(url: str, admin: str, scope: str, limit: str) -> float:
    text = admin_get(url, admin, "/metrics").text
    label = f'modelgate_shadow_refusals_total{{limit="{limit}",scope="{scope}"}}'
    found = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(label)]
    return float(found[0]) if found else 0.0


def logged_shadow(state_dir: Path, key_id: str) -> list[list[str] | None]:
    """The `shadow` column of the key's request-log rows, oldest first."""
    with sqlite3.connect(state_dir / "requests.sqlite3") as db:
        rows = db.execute(
            "SELECT shadow FROM requests WHERE key_id = ? ORDER BY ts", (key_id,)
        ).fetchall()
    return [None if text is None else json.loads(text) for (text,) in rows]


def test_served_reported_everywhere_then_enforced_by_one_line(served: Served) -> None:
    answers = [served.chat("trial") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all("x-ratelimit-limit-requests" not in a.headers for a in answers)  # invisible

    body = usage(served.url, served.policy.admin, "trial")
    (key,) = body["keys"]
    assert key["rpm"] == {"limit": None, "used": 3}
    assert key["tokens_per_day"]["used"] == 3 * PER_REQUEST
    assert key["shadow"]["limits"] == {"rpm": 2, "tokens_per_day": 30}
    assert key["shadow"]["refusals_day"] == {"tokens_per_day": 1, "rpm": 1}
    assert {**key["shadow"], "scope": "trial"} in body["shadow"]
    assert shadow_metric(served.url, served.policy.admin, "trial", "rpm") == 1
    assert shadow_metric(served.url, served.policy.admin, "trial", "tokens_per_day") == 1
    state = served.gateway.state_dir
    wait_for(lambda: len(logged_shadow(state, "trial")) == 3, "the request log")
    assert logged_shadow(state, "trial") == [None, None, ["tokens_per_day", "rpm"]]

    # The one-line commit: `enforce: shadow` -> `enforce: on`. The counts carry over.
    commit = served.policy.set_key("trial", KeySpec(limits=TRIAL.replace("shadow", "on")))
    wait_applied(served.url, served.policy.admin, commit)
    refused = served.chat("trial")
    assert refused.status_code == 429
    assert "daily token quota" in refused.json()["error"]["message"]
    (key,) = usage(served.url, served.policy.admin, "trial")["keys"]
    assert key["rpm"] == {"limit": 2, "used": 3}
    assert (key["tokens_per_day"]["limit"], key["tokens_per_day"]["used"]) == (30, 54)
    assert key["shadow"]["limits"] == {}  # no shadow limit left; its counts still show
    assert key["shadow"]["refusals_month"] == {"tokens_per_day": 1, "rpm": 1}


def test_a_stricter_shadow_limit_beside_the_enforced_one(served: Served) -> None:
    statuses = [served.chat("beside").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]  # rpm 3 enforced; shadow rpm 1 refuses nothing
    (key,) = usage(served.url, served.policy.admin, "beside")["keys"]
    assert key["rpm"] == {"limit": 3, "used": 3}
    assert key["shadow"]["refusals_day"] == {"rpm": 2}
    wait_for(lambda: len(logged_shadow(served.gateway.state_dir, "beside")) == 4, "the log")
    assert logged_shadow(served.gateway.state_dir, "beside") == [None, ["rpm"], ["rpm"], None]


@pytest.mark.redis
def test_two_gateways_on_one_redis_share_shadow_counts_and_the_switch(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    specs = {"shared": KeySpec(limits="{enforce: shadow, rpm: 3}")}
    policy = LimitsPolicy.create(tmp_path / "policy", upstream.url, specs)
    redis = RedisServer(tmp_path / "redis").start()
    gateways = [
        GatewayProcess(policy.repo.path, tmp_path / f"state-{i}", "--redis-url", redis.url)
        for i in range(2)
    ]
    try:
        for gateway in gateways:
            gateway.start()
        urls = [g.url for g in gateways]
        secret = policy.secrets["shared"]
        statuses = [chat(urls[i % 2], secret).status_code for i in range(6)]
        assert statuses == [200] * 6
        for url in urls:
            (key,) = usage(url, policy.admin, "shared")["keys"]
            assert key["rpm"]["used"] == 6
            assert key["shadow"]["refusals_day"] == {"rpm": 3}
        commit = policy.set_key("shared", KeySpec(limits="{enforce: on, rpm: 3}"))
        for url in urls:
            wait_applied(url, policy.admin, commit)
            assert chat(url, secret).status_code == 429  # the shared window: 6 already
    finally:
        for gateway in gateways:
            gateway.stop()
        redis.stop()
