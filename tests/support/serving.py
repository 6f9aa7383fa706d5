"""A real gateway on a policy of one commit: what most integration fixtures start."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, hash_of

OPEN_LIMITS = "default: {}\ntiers: {}\n"


def one_key(secret: str, key_id: str = "tester") -> str:
    """keys.yaml with a single client key and no admin."""
    return f"keys:\n  - id: {key_id}\n    hash: {hash_of(secret)}\n"


def commit_policy(
    repo: PolicyRepo, *, providers: str, routes: str, keys: str, limits: str = OPEN_LIMITS
) -> str:
    """Write the four policy files (YAML or JSON text) and commit them."""
    repo.write("providers.yaml", providers)
    repo.write("routes.yaml", routes)
    repo.write("limits.yaml", limits)
    repo.write("keys.yaml", keys)
    return repo.commit("policy")


@contextmanager
def serving(
    root: Path,
    *,
    providers: str,
    routes: str,
    keys: str,
    limits: str = OPEN_LIMITS,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    kill: bool = False,
) -> Iterator[GatewayProcess]:
    """A gateway serving `root`/policy (committed with these files) from `root`/state; stopped
    after, or killed (`kill`) where a stuck worker would not stop on SIGTERM."""
    repo = PolicyRepo(root / "policy")
    commit_policy(repo, providers=providers, routes=routes, keys=keys, limits=limits)
    gateway = GatewayProcess(repo.path, root / "state", *args, env=env)
    try:
        yield gateway.start()
    finally:
        if kill:
            gateway.kill()
        else:
            gateway.stop()
