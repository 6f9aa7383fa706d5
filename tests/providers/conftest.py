"""One gateway in front of the new upstream kinds: Bedrock, Claude on Vertex AI, and an
OpenAI provider served only through the Responses API, for the official SDKs to call.

The fake Bedrock runtime (SigV4 checked with botocore) serves the bedrock providers; the
fake upstream serves Vertex AI (its token from the fake token server, by a service-account
JWT) and the Responses API. Each failure case has providers of its own, so a cooled
credential affects no other test. The deployment is shared by the package's tests; the
fakes' records are cleared before each test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.protocols.conftest import Matrix
from tests.resilience.conftest import write_service_account
from tests.support.fake_bedrock import FakeBedrock
from tests.support.fake_token_server import FakeTokenServer
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret
from tests.support.waiting import eventually

REGION = "us-east-1"
AWS_KEYS = {
    "AKIAFAKEKEYFORTESTS0": "fake-aws-secret-for-tests-0",
    "AKIAFAKEKEYFORTESTS1": "fake-aws-secret-for-tests-1",
}
CHAIN_KEY = ("ASIAFAKECHAINKEYTEST", "fake-aws-secret-from-the-chain", "fake-session-token")
"""The key the standard AWS chain finds in the gateway's environment (a session key, as IRSA
and instance profiles give)."""
WRONG_SECRET = "fake-aws-secret-that-aws-refuses"
SECRETS = {
    "AWS_ID_0": "AKIAFAKEKEYFORTESTS0",
    "AWS_SECRET_0": AWS_KEYS["AKIAFAKEKEYFORTESTS0"],
    "AWS_ID_1": "AKIAFAKEKEYFORTESTS1",
    "AWS_SECRET_1": AWS_KEYS["AKIAFAKEKEYFORTESTS1"],
    "AWS_WRONG_SECRET": WRONG_SECRET,
    # What botocore's standard chain reads first; the metadata service is never asked.
    "AWS_ACCESS_KEY_ID": CHAIN_KEY[0],
    "AWS_SECRET_ACCESS_KEY": CHAIN_KEY[1],
    "AWS_SESSION_TOKEN": CHAIN_KEY[2],
    "AWS_EC2_METADATA_DISABLED": "true",
}
BEDROCK_MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
VERTEX_MODEL = "claude-sonnet-4@20250514"
VERTEX_PATH = "/v1/projects/fake-project/locations/us-east5/publishers/anthropic"
RESPONSES_MODEL = "gpt-5-codex"
CLIENTS = ("openai", "anthropic", "gemini")
SA_TOKENS = "sa"
"""The token server's scenario (and the token prefix `tok-sa-`) of the Vertex account."""

ROUTES: dict[str, list[str]] = {
    "claude-bedrock": [f"bedrock/{BEDROCK_MODEL}"],
    "bedrock-chain": [f"bedrock-chain/{BEDROCK_MODEL}"],
    "bedrock-failover": ["bedrock-throttled/first-model", "bedrock-backup/second-model"],
    **{f"bedrock-wrong-{c}": [f"bedrock-wrong-{c}/any-model"] for c in CLIENTS},
    "claude-vertex": [f"vertex-claude/{VERTEX_MODEL}"],
    "codex": [f"codex/{RESPONSES_MODEL}"],
}


def aws(index: int, secret: str | None = None) -> dict[str, Any]:
    return {
        "aws": {
            "access_key_id": f"env:AWS_ID_{index}",
            "secret_access_key": secret or f"env:AWS_SECRET_{index}",
        }
    }


def provider_table(bedrock: str, upstream: str) -> dict[str, Any]:
    def signed(*creds: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return {
            "type": "bedrock",
            "base_url": bedrock,
            "region": REGION,
            "credentials": list(creds),
            "max_retries": 0,
            **kw,
        }

    return {
        "bedrock": signed(aws(0)),
        "bedrock-chain": signed(),  # no credentials named: the standard AWS chain
        "bedrock-throttled": signed(aws(1), cooldown_s=30),
        "bedrock-backup": signed(aws(0)),
        # One per client: a refused credential leaves its pool.
        **{f"bedrock-wrong-{c}": signed(aws(0, "env:AWS_WRONG_SECRET")) for c in CLIENTS},
        "vertex-claude": {
            "type": "anthropic",
            "base_url": upstream + VERTEX_PATH,
            "credentials": [{"google_service_account": "file:sa.json"}],
            "max_retries": 0,
        },
        "codex": {
            "type": "openai",
            "base_url": upstream + "/v1",
            "api": "responses",
            "credentials": ["env:FAKE_UPSTREAM_KEY"],
            "max_retries": 0,
        },
    }


@dataclass
class Site:
    m: Matrix
    """The SDK clients (tests/protocols/sdk_calls.py takes it), pointed at this gateway."""
    bedrock: FakeBedrock
    tokens: FakeTokenServer
    admin: str

    @property
    def upstream(self) -> FakeUpstream:
        return self.m.upstream

    @property
    def gateway(self) -> GatewayProcess:
        return self.m.gateway

    def admin_get(self, path: str, **params: str) -> Any:
        response = httpx.get(
            self.gateway.url + path,
            params=params,
            headers={"authorization": f"Bearer {self.admin}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def recorded(self, route: str) -> dict[str, dict[str, int]]:
        """What the gateway recorded for `route` since it started, per provider."""
        return {
            entry["provider"]: {
                k: entry[k] for k in ("requests", "errors", "prompt_tokens", "completion_tokens")
            }
            for entry in self.admin_get("/admin/api/usage")["models"]
            if entry["model"] == route
        }

    def expect_recorded(
        self,
        route: str,
        before: dict[str, dict[str, int]],
        provider: str,
        requests: int,
        prompt: int,
        completion: int,
        errors: int = 0,
    ) -> None:
        """Wait until `route` recorded exactly this much more for `provider` than `before`
        (a stream's record is written just after its last byte)."""
        zero = {"requests": 0, "errors": 0, "prompt_tokens": 0, "completion_tokens": 0}
        was = before.get(provider, zero)
        want = {
            "requests": was["requests"] + requests,
            "errors": was["errors"] + errors,
            "prompt_tokens": was["prompt_tokens"] + prompt,
            "completion_tokens": was["completion_tokens"] + completion,
        }
        try:
            eventually(lambda: self.recorded(route).get(provider) == want, within_s=3)
        except AssertionError:
            raise AssertionError(
                f"{route}/{provider}: recorded {self.recorded(route).get(provider)}, want {want}"
            ) from None

    def credential(self, provider: str) -> dict[str, Any] | None:
        found = [
            e
            for e in self.admin_get("/admin/api/status")["credentials"]
            if e["provider"] == provider
        ]
        return found[0] if found else None


def _write_policy(repo: PolicyRepo, table: dict[str, Any], key: str, admin: str) -> None:
    # JSON is YAML; Bedrock model ids (':') need no quoting rules this way.
    repo.write("providers.yaml", json.dumps({"providers": table}))
    routes = {name: {"targets": targets} for name, targets in ROUTES.items()}
    repo.write("routes.yaml", json.dumps({"routes": routes}))
    repo.write("limits.yaml", "default: {}\ntiers: {}\n")
    keys = {
        "keys": [{"id": "tester", "hash": hash_of(key)}],
        "admins": [{"id": "ops", "hash": hash_of(admin)}],
    }
    repo.write("keys.yaml", json.dumps(keys))
    repo.commit("providers e2e policy")


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("providers")
    upstream = FakeUpstream().start()
    keys: dict[str, tuple[str, str | None]] = {k: (s, None) for k, s in AWS_KEYS.items()}
    keys[CHAIN_KEY[0]] = (CHAIN_KEY[1], CHAIN_KEY[2])
    bedrock = FakeBedrock(keys, REGION).start()
    tokens = FakeTokenServer().start()
    creds = root / "credentials"
    creds.mkdir()
    tokens.public_keys[SA_TOKENS] = write_service_account(creds, tokens.url(SA_TOKENS))
    key, admin = new_secret(), new_secret()
    repo = PolicyRepo(root / "policy")
    _write_policy(repo, provider_table(bedrock.url, upstream.url), key, admin)
    gateway = GatewayProcess(
        repo.path, root / "state", "--credentials-dir", str(creds), env=SECRETS
    )
    try:
        gateway.start()
        yield Site(Matrix(upstream, gateway, key), bedrock, tokens, admin)
    finally:
        gateway.stop()
        tokens.stop()
        bedrock.stop()
        upstream.stop()


@pytest.fixture
def s(site: Site) -> Iterator[Site]:
    """The shared deployment, with the fakes' records cleared."""
    site.upstream.reset()
    site.bedrock.reset()
    yield site
    site.m.close_clients()
