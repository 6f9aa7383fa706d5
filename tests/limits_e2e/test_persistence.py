"""Quota use outlives the process: a clean stop loses nothing, a kill -9 about a second."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.limits_e2e.calls import (
    CHAT_PATH,
    PER_REQUEST,
    assert_refused,
    chat,
    chat_body,
    key_usage,
)
from tests.limits_e2e.policy import KeySpec, LimitsPolicy
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess

KEYS = {
    "quota": KeySpec(limits="{tokens_per_day: 36}"),
    "heavy": KeySpec(limits="{tokens_per_day: 100000000, tokens_per_month: 100000000}"),
}
FLUSH_INTERVAL_S = 1.0
"""How often the usage store writes (gateway/usage/store.py): what a crash may lose."""
SLACK_S = 0.75
"""A loaded machine may start a flush a little late."""
BURST_S = 3.0


def _day_and_month(gateway: GatewayProcess, admin: str, key_id: str) -> tuple[int, int, int]:
    report = key_usage(gateway.url, admin, key_id)
    day, month = report["tokens_per_day"], report["tokens_per_month"]
    assert day["requests"] * PER_REQUEST == day["used"]  # whole requests, never half of one
    return day["used"], month["used"], day["requests"]


def test_quota_use_survives_a_restart_and_a_crash_loses_at_most_a_second(
    tmp_path: Path, upstream: FakeUpstream, gateways: Callable[..., GatewayProcess]
) -> None:
    policy = LimitsPolicy.create(tmp_path / "policy", upstream.url, KEYS)
    state = tmp_path / "state"
    first = gateways(policy.repo, state_dir=state)
    for _ in range(2):
        assert chat(first.url, policy.secrets["quota"]).status_code == 200
    for _ in range(3):
        assert chat(first.url, policy.secrets["heavy"]).status_code == 200
    first.stop()  # SIGTERM: everything recorded is written
    assert first.proc is not None and first.proc.returncode == 0
    second = gateways(policy.repo, state_dir=state)
    assert _day_and_month(second, policy.admin, "quota") == (36, 36, 2)
    assert _day_and_month(second, policy.admin, "heavy") == (54, 54, 3)
    assert_refused(chat(second.url, policy.secrets["quota"]), "insufficient_quota", unit=None)

    finished = _keep_busy(second, policy.secrets["heavy"])
    second.kill()  # SIGKILL: no shutdown, no final write
    killed_at = time.monotonic()
    third = gateways(policy.repo, state_dir=state)
    day, month, requests = _day_and_month(third, policy.admin, "heavy")
    assert day == month
    lost = 3 + len(finished) - requests
    at_risk = sum(1 for t in finished if t > killed_at - FLUSH_INTERVAL_S - SLACK_S)
    rate = len(finished) / BURST_S
    print(
        f"crash: {len(finished)} requests in {BURST_S}s ({rate:.0f}/s), "
        f"{lost} lost ({lost * PER_REQUEST} tokens, {lost / rate:.2f}s of usage), "
        f"{at_risk} finished in the last {FLUSH_INTERVAL_S + SLACK_S}s"
    )
    assert 0 <= lost <= at_risk


def _keep_busy(gateway: GatewayProcess, secret: str) -> list[float]:
    """Requests one after another for BURST_S; when each finished (monotonic)."""
    finished: list[float] = []
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        deadline = time.monotonic() + BURST_S
        while time.monotonic() < deadline:
            response = client.post(
                CHAT_PATH, json=chat_body(), headers={"authorization": f"Bearer {secret}"}
            )
            assert response.status_code == 200
            finished.append(time.monotonic())
    return finished
