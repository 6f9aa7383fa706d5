"""Fixtures shared by every test group: real processes and repositories on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, standard_policy


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture
def policy_repo(tmp_path: Path) -> PolicyRepo:
    return PolicyRepo(tmp_path / "policy")


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    started: list[GatewayProcess] = []

    def start(repo: PolicyRepo, *args: str, **kwargs: object) -> GatewayProcess:
        state = tmp_path / f"state-{len(started)}"
        gateway = GatewayProcess(repo.path, state, *args, **kwargs)  # type: ignore[arg-type]
        started.append(gateway)
        return gateway.start()

    yield start
    for gateway in started:
        gateway.stop()


class Deployment:
    """A fake upstream, a policy repository and a gateway serving it."""

    def __init__(
        self,
        upstream: FakeUpstream,
        repo: PolicyRepo,
        gateway: GatewayProcess,
        keys: dict[str, str],
    ) -> None:
        self.upstream, self.repo, self.gateway, self.keys = upstream, repo, gateway, keys


@pytest.fixture(scope="module")
def module_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One deployment for the tests of a module that leave its gateway as they found it:
    a gateway start is most of such a test's time."""
    tmp = tmp_path_factory.mktemp("deployment")
    upstream = FakeUpstream().start()
    repo = PolicyRepo(tmp / "policy")
    keys = standard_policy(repo, upstream.url)
    gateway = GatewayProcess(repo.path, tmp / "state")
    try:
        yield Deployment(upstream, repo, gateway.start(), keys)
    finally:
        gateway.stop()
        upstream.stop()


@pytest.fixture
def shared_deployment(module_deployment: Deployment) -> Deployment:
    """The module's deployment, its upstream's records and unused faults forgotten."""
    module_deployment.upstream.reset()
    return module_deployment


@pytest.fixture
def deployment(
    fake_upstream: FakeUpstream,
    policy_repo: PolicyRepo,
    start_gateway: Callable[..., GatewayProcess],
) -> Deployment:
    keys = standard_policy(policy_repo, fake_upstream.url)
    return Deployment(fake_upstream, policy_repo, start_gateway(policy_repo), keys)
