"""One fake upstream speaking all three protocols, and one gateway routing to it.

Each provider type gets a route: `via-openai` (openai-compatible), `via-anthropic`,
`via-gemini`, `via-azure`. Error cases that change a credential's state (a 429 cools it,
a 401 takes it out) get a provider of their own per client, so no test sees another's.
The deployment is shared by the package's tests (starting a gateway costs a second);
the fake's records and faults are reset before each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret

CLIENTS = ("openai", "anthropic", "gemini")
PROVIDERS = ("openai", "anthropic", "gemini")
PROVIDER_TYPES = {"openai": "openai-compatible", "anthropic": "anthropic", "gemini": "gemini"}
UPSTREAM_MODELS = {"openai": "up-gpt", "anthropic": "up-claude", "gemini": "up-gemini"}
AZURE_DEPLOYMENT = "my-deployment"
AZURE_API_VERSION = "2024-10-21"
# A provider of another protocol behind each client's error routes (translation included).
ERROR_PROVIDER = {"openai": "anthropic", "anthropic": "gemini", "gemini": "openai"}


def route(provider: str) -> str:
    return f"via-{provider}"


def _base_url(kind: str, url: str) -> str:
    return f"{url}/v1" if kind == "openai" else url


def _provider(name: str, kind: str, url: str, extra: str = "") -> str:
    return (
        f"  {name}:\n"
        f"    type: {PROVIDER_TYPES.get(kind, kind)}\n"
        f"    base_url: {_base_url(kind, url)}\n"
        f"    credentials: [env:FAKE_UPSTREAM_KEY]\n"
        f"    max_retries: 0\n{extra}"
    )


def write_policy(repo: PolicyRepo, url: str, secret: str) -> None:
    providers = [_provider(p, p, url) for p in PROVIDERS]
    providers.append(
        _provider("azure", "azure-openai", url, f"    api_version: '{AZURE_API_VERSION}'\n")
    )
    routes = [f"  {route(p)}:\n    targets: [{p}/{UPSTREAM_MODELS[p]}]\n" for p in PROVIDERS]
    routes.append(f"  via-azure:\n    targets: [azure/{AZURE_DEPLOYMENT}]\n")
    routes.append("  embed-google:\n    targets: [gemini/up-embed]\n")
    routes.append("  embed-oai:\n    targets: [openai/up-embed]\n")
    for client in CLIENTS:
        for case in ("e401", "e429"):
            name = f"{case}-{client}"
            providers.append(_provider(name, ERROR_PROVIDER[client], url))
            routes.append(f"  {name}:\n    targets: [{name}/up-{case}]\n")
    (repo.path / "providers.yaml").write_text("providers:\n" + "".join(providers))
    (repo.path / "routes.yaml").write_text("routes:\n" + "".join(routes))
    (repo.path / "limits.yaml").write_text("default: {}\ntiers: {}\n")
    (repo.path / "keys.yaml").write_text(f"keys:\n  - id: tester\n    hash: {hash_of(secret)}\n")
    repo.commit("protocols matrix policy")


@dataclass
class Matrix:
    upstream: FakeUpstream
    gateway: GatewayProcess
    key: str
    opened: list[Any] = field(default_factory=list)
    """SDK clients made during the current test; closed after it (unclosed sockets warn)."""

    def openai(self) -> openai.OpenAI:
        client = openai.OpenAI(base_url=self.gateway.url + "/v1", api_key=self.key, max_retries=0)
        self.opened.append(client)
        return client

    def anthropic(self) -> anthropic.Anthropic:
        client = anthropic.Anthropic(base_url=self.gateway.url, api_key=self.key, max_retries=0)
        self.opened.append(client)
        return client

    def gemini(self, api_version: str | None = None) -> genai.Client:
        options = genai_types.HttpOptions(base_url=self.gateway.url, api_version=api_version)
        client = genai.Client(api_key=self.key, http_options=options)
        self.opened.append(client)
        return client

    def close_clients(self) -> None:
        while self.opened:
            self.opened.pop().close()

    def last(self) -> dict[str, object]:
        """The body of the last request the upstream received."""
        body = self.upstream.requests[-1].body
        assert body is not None
        return body


@pytest.fixture(scope="package")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    upstream = FakeUpstream().start()
    root = tmp_path_factory.mktemp("protocols")
    repo = PolicyRepo(root / "policy")
    secret = new_secret()
    write_policy(repo, upstream.url, secret)
    gateway = GatewayProcess(repo.path, root / "state")
    try:
        gateway.start()
        yield Matrix(upstream, gateway, secret)
    finally:
        gateway.stop()
        upstream.stop()


@pytest.fixture
def m(matrix: Matrix) -> Iterator[Matrix]:
    """The shared deployment, with the fake's records and faults cleared."""
    matrix.upstream.reset()
    yield matrix
    matrix.close_clients()
