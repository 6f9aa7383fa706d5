"""20 simultaneous requests against rpm 10: exactly 10 pass, in every deployment shape."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.limits_e2e.calls import assert_refused, burst, key_usage
from tests.limits_e2e.conftest import Served
from tests.limits_e2e.policy import KeySpec, LimitsPolicy
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.redis_server import RedisServer

SERVE = (sys.executable, "-m", "gateway.cli", "serve")
RPM = 10
BURST = 20


def _policy(tmp_path: Path, upstream: FakeUpstream) -> LimitsPolicy:
    return LimitsPolicy.create(
        tmp_path / "policy", upstream.url, {"burst": KeySpec(limits=f"{{rpm: {RPM}}}")}
    )


def _assert_exactly_rpm_pass(responses: list[httpx.Response]) -> None:
    passed = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(passed) == RPM, sorted(r.status_code for r in responses)
    assert len(refused) == BURST - RPM
    # Every admission saw the count of the one before it: remaining 9, 8, ..., 0, once each.
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in passed)
    assert remaining == list(range(RPM))
    for response in passed:
        assert response.headers["x-ratelimit-limit-requests"] == str(RPM)
    for response in refused:
        assert_refused(response)
        assert response.headers["x-ratelimit-limit-requests"] == str(RPM)
        assert response.headers["x-ratelimit-remaining-requests"] == "0"
        assert 1 <= int(response.headers["retry-after"]) <= 60


def test_one_gateway(served: Served, upstream: FakeUpstream) -> None:
    """In-process limits, and Redis limits with one worker."""
    _assert_exactly_rpm_pass(burst([served.url], served.secret("burst"), BURST))
    assert len(upstream.requests) == RPM  # refused requests never reached the upstream
    assert served.usage("burst")["rpm"] == {"limit": RPM, "used": RPM}


def test_two_workers_sharing_redis(
    tmp_path: Path,
    upstream: FakeUpstream,
    redis_server: RedisServer,
    gateways: Callable[..., GatewayProcess],
) -> None:
    policy = _policy(tmp_path, upstream)
    gateway = gateways(policy.repo, "--workers", "2", "--redis-url", redis_server.url)
    _assert_exactly_rpm_pass(burst([gateway.url], policy.secrets["burst"], BURST))
    assert len(upstream.requests) == RPM
    assert key_usage(gateway.url, policy.admin, "burst")["rpm"]["used"] == RPM


def test_two_gateways_sharing_redis(
    tmp_path: Path,
    upstream: FakeUpstream,
    redis_server: RedisServer,
    gateways: Callable[..., GatewayProcess],
) -> None:
    policy = _policy(tmp_path, upstream)
    first = gateways(policy.repo, "--redis-url", redis_server.url)
    second = gateways(policy.repo, "--redis-url", redis_server.url)
    responses = burst([first.url, second.url], policy.secrets["burst"], BURST)
    _assert_exactly_rpm_pass(responses)
    assert len(upstream.requests) == RPM
    for gateway in (first, second):  # both read the same count from Redis
        assert key_usage(gateway.url, policy.admin, "burst")["rpm"]["used"] == RPM


def test_several_workers_without_redis_are_refused(tmp_path: Path) -> None:
    state, repo = tmp_path / "state", tmp_path / "policy"
    args = ["--workers", "2", "--policy-repo", str(repo), "--state-dir", str(state)]
    done = subprocess.run([*SERVE, *args], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "--redis-url" in done.stderr
    assert "--workers" in done.stderr
    assert not repo.exists()  # refused before doing anything
