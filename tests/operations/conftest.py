"""A deployment with a rate-limited key and fast event heartbeats, for operations tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import Deployment
from tests.operations.sse import Viewer
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret, standard_policy

LIMITS = """
default: {}
tiers:
  tiny: {rpm: 1}
"""


def ops_policy(repo: PolicyRepo, upstream_url: str) -> dict[str, str]:
    """The standard policy plus `carol`, limited to one request per minute."""
    carol = new_secret()
    # standard_policy indents the lines after the first by two spaces only: pre-indent them.
    pad = " " * 10
    extra = f"- id: carol\n{pad}hash: {hash_of(carol)}\n{pad}tier: tiny"
    keys = standard_policy(repo, upstream_url, extra_keys=extra, limits=LIMITS)
    keys["carol"] = carol
    return keys


@pytest.fixture
def ops_deployment(
    fake_upstream: FakeUpstream,
    policy_repo: PolicyRepo,
    start_gateway: Callable[..., GatewayProcess],
) -> Deployment:
    keys = ops_policy(policy_repo, fake_upstream.url)
    gateway = start_gateway(policy_repo, "--events-heartbeat", "0.5")
    return Deployment(fake_upstream, policy_repo, gateway, keys)


@pytest.fixture
def open_viewer(ops_deployment: Deployment) -> Iterator[Callable[..., Viewer]]:
    viewers: list[Viewer] = []

    def open_(last_event_id: int | None = None, token: str | None = None) -> Viewer:
        d = ops_deployment
        viewer = Viewer(d.gateway.url, token or d.keys["admin"], last_event_id)
        viewers.append(viewer)
        return viewer

    yield open_
    for viewer in viewers:
        viewer.close()


def state_dir_of(d: Deployment) -> Path:
    return d.gateway.state_dir


@pytest.fixture
def sdk(ops_deployment: Deployment) -> Iterator[Callable[..., openai.OpenAI]]:
    """openai clients of the deployment's keys (`sdk("bob")`, or `sdk(secret=...)`), closed
    at the end so no pooled socket outlives the test."""
    made: list[openai.OpenAI] = []

    def make(key: str = "alice", secret: str | None = None) -> openai.OpenAI:
        d = ops_deployment
        made.append(
            openai.OpenAI(
                base_url=d.gateway.url + "/v1", api_key=secret or d.keys[key], max_retries=0
            )
        )
        return made[-1]

    yield make
    for client in made:
        client.close()
