"""One gateway with many small providers and routes, each case its own, over real loopback.

The fake upstream serves every provider (faults are scripted per request, in order), a fake
token endpoint serves the token credentials, and one provider points at a closed port.
State changes (cooldowns, removals) are per provider, so no test sees another's. Timeouts
and cooldowns are short so that the group stays fast. The deployment is shared by the
package's tests; the fake's records and faults are reset before each test.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.fake_token_server import FakeTokenServer
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret

SECRETS = {
    "K_A": "upstream-key-a-0123456789",
    "K_1": "upstream-key-1-0123456789",
    "K_2": "upstream-key-2-0123456789",
    "K_3": "upstream-key-3-0123456789",
    "OAUTH_SECRET": "oauth-client-secret-0123456789",
}
FILES = {
    "refuse.key": "file-key-first-0123456789",
    "oauth.refresh": "refresh-oauth-0123456789",
    "crowd.refresh": "refresh-crowd-0123456789",
    "short.refresh": "refresh-short-0123456789",
    "bad.refresh": "refresh-bad-0123456789",
    "down.refresh": "refresh-down-0123456789",
}
TOKEN_SCENARIOS = {
    "oauth": {},
    "crowd": {"delay_s": 0.5},
    "short": {"expires_in": 4},
    "bad": {"status": 400, "error": "invalid_grant"},
    "down": {"status": 500, "error": "server_error"},
}
SA_EMAIL = "gateway@project.iam.gserviceaccount.com"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def providers(url: str, tokens: FakeTokenServer, closed: int) -> dict[str, Any]:
    def p(kind: str = "openai-compatible", creds: Any = ("env:K_A",), **kw: Any) -> Any:
        base = f"{url}/v1" if kind == "openai-compatible" else url
        return {"type": kind, "base_url": base, "credentials": list(creds), "max_retries": 0, **kw}

    def oauth(name: str, **kw: Any) -> Any:
        grant = {
            "token_url": tokens.url(name),
            "client_id": "gateway",
            "client_secret": "env:OAUTH_SECRET",
            "refresh_token": f"file:{name}.refresh",
        }
        return p(creds=[{"oauth2": grant}], **kw)

    pair = ["env:K_1", "env:K_2"]
    return {
        "retry": p(max_retries=2),
        "down": p(),
        "claude": p("anthropic"),
        "gem": p("gemini"),
        "closed": {
            **p(max_retries=1, connect_timeout_s=0.5),
            "base_url": f"http://127.0.0.1:{closed}/v1",
        },
        "rr": p(),
        "pool": p(creds=["env:K_1", "env:K_2", "env:K_3"]),
        "fill": p(creds=pair, selection="fill-first", cooldown_s=30),
        "quota": p(creds=pair, selection="fill-first"),
        "gem-quota": p("gemini", creds=pair, selection="fill-first"),
        "cool": p(cooldown_s=30),
        "cool-default": p(cooldown_s=3),
        "cool-long": p(cooldown_s=1),
        "cool-a": p(),
        "cool-b": p(),
        "refuse": p(creds=["file:refuse.key", "env:K_2"], selection="fill-first"),
        "gem-invalid": p("gemini"),
        "missing": p(creds=["env:K_UNSET"]),
        "slow": p(first_byte_timeout_s=0.3),
        "idle": p(idle_timeout_s=0.3),
        "total": p(timeout_s=0.8, idle_timeout_s=5),
        "patient": p(max_retries=10),
        "reload": p(cooldown_s=30),
        "reload-refuse": p(),
        "rr2": p(),
        "oauth": oauth("oauth"),
        "oauth-crowd": oauth("crowd"),
        "oauth-short": oauth("short"),
        "oauth-bad": oauth("bad"),
        "oauth-down": oauth("down", cooldown_s=5),
        "vertex": p("gemini", creds=[{"google_service_account": "file:sa.json"}]),
    }


ROUTES: dict[str, Any] = {
    "r-retry": ["retry/m"],
    "r-cross": ["down/m", "claude/claude-m"],
    "r-refused": ["closed/m", "rr/m"],
    "r-rr": {"targets": ["rr/a", "rr/b", "rr/c"], "strategy": "round-robin"},
    "r-pool": ["pool/m"],
    "r-fill": ["fill/m"],
    "r-quota": ["quota/m"],
    "r-gem-quota": ["gem-quota/g"],
    "r-cool": ["cool/m"],
    "r-cool-default": ["cool-default/m"],
    "r-cool-long": ["cool-long/m"],
    "r-all-cool": ["cool-a/m", "cool-b/m"],
    "r-client-4xx": ["down/m", "rr/m"],
    "r-refuse": ["refuse/m"],
    "r-gem-invalid": ["gem-invalid/g"],
    "r-missing": ["missing/m"],
    "r-slow": ["slow/m", "rr/m"],
    "r-idle": ["idle/m"],
    "r-total": ["total/m"],
    "r-deadline": {"targets": ["patient/m"], "deadline_s": 0.5},
    "r-midstream": ["down/m", "rr/m"],
    "r-break-openai": ["claude/c"],
    "r-break-anthropic": ["gem/g"],
    "r-break-gemini": ["claude/c"],
    "r-reload": ["reload/m"],
    "r-reload-refuse": ["reload-refuse/m"],
    "r-rr-reload": {"targets": ["rr2/a", "rr2/b", "rr2/c"], "strategy": "round-robin"},
    "r-oauth": ["oauth/m"],
    "r-oauth-crowd": ["oauth-crowd/m"],
    "r-oauth-short": ["oauth-short/m"],
    "r-oauth-bad": ["oauth-bad/m"],
    "r-oauth-down": ["oauth-down/m"],
    "r-vertex": ["vertex/gem-v"],
    "glob-*": ["rr/up-*"],
}


def write_service_account(creds: Path, token_uri: str) -> str:
    """A service-account JSON key in `creds`; returns its PEM public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account = {
        "type": "service_account",
        "client_email": SA_EMAIL,
        "private_key_id": "k1",
        "private_key": pem,
        "token_uri": token_uri,
    }
    (creds / "sa.json").write_text(json.dumps(account))
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public.decode()


@dataclass
class Rig:
    upstream: FakeUpstream
    tokens: FakeTokenServer
    gateway: GatewayProcess
    repo: PolicyRepo
    creds: Path
    key: str
    admin: str
    provider_table: dict[str, Any]
    routes: dict[str, Any] = field(default_factory=lambda: dict(ROUTES))

    # policy --------------------------------------------------------------------------
    def write_policy(self) -> None:
        # JSON is YAML: the files say exactly what the tables say.
        self.repo.write("providers.yaml", json.dumps({"providers": self.provider_table}))
        routes = {n: {"targets": r} if isinstance(r, list) else r for n, r in self.routes.items()}
        self.repo.write("routes.yaml", json.dumps({"routes": routes}))
        self.repo.write("limits.yaml", "default: {}\ntiers: {}\n")
        keys = {
            "keys": [{"id": "tester", "hash": hash_of(self.key)}],
            "admins": [{"id": "ops", "hash": hash_of(self.admin)}],
        }
        self.repo.write("keys.yaml", json.dumps(keys))

    def commit_and_wait(self, message: str) -> str:
        self.write_policy()
        head = self.repo.commit(message)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.status()["policy"]["commit"] == head:
                return head
            time.sleep(0.05)
        raise AssertionError(f"the gateway did not apply {head}")

    # calls -----------------------------------------------------------------------------
    def chat(self, model: str, stream: bool = False, timeout: float = 10) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        return httpx.post(
            self.gateway.url + "/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {self.key}"},
            timeout=timeout,
        )

    def call(self, protocol: str, model: str, stream: bool) -> httpx.Response:
        """One generation in the client protocol's own wire format."""
        text = [{"role": "user", "content": "hi"}]
        if protocol == "openai":
            return self.chat(model, stream)
        if protocol == "anthropic":
            body = {"model": model, "max_tokens": 64, "messages": text, "stream": stream}
            return httpx.post(
                self.gateway.url + "/v1/messages",
                json=body,
                headers={"x-api-key": self.key, "anthropic-version": "2023-06-01"},
                timeout=10,
            )
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return httpx.post(
            f"{self.gateway.url}/v1beta/models/{model}:{method}",
            json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
            headers={"x-goog-api-key": self.key},
            timeout=10,
        )

    def admin_get(self, path: str) -> Any:
        response = httpx.get(
            self.gateway.url + path, headers={"authorization": f"Bearer {self.admin}"}
        )
        assert response.status_code == 200, response.text
        return response.json()

    def status(self) -> Any:
        return self.admin_get("/admin/api/status")

    def credential(self, provider: str, ref: str) -> dict[str, Any] | None:
        found = [
            e
            for e in self.status()["credentials"]
            if e["provider"] == provider and e["credential"] == ref
        ]
        return found[0] if found else None

    def listed(self, gemini: bool = False) -> set[str]:
        if gemini:
            answer = httpx.get(self.gateway.url + "/v1beta/models", params={"key": self.key})
            return {m["name"].removeprefix("models/") for m in answer.json()["models"]}
        answer = httpx.get(
            self.gateway.url + "/v1/models", headers={"authorization": f"Bearer {self.key}"}
        )
        return {m["id"] for m in answer.json()["data"]}

    def upstream_keys(self) -> list[str | None]:
        """The credential each upstream request carried (Bearer, x-api-key or x-goog-api-key)."""
        out: list[str | None] = []
        for recorded in self.upstream.requests:
            headers = {k.lower(): v for k, v in recorded.headers.items()}
            auth = headers.get("authorization", "").removeprefix("Bearer ") or None
            out.append(auth or headers.get("x-api-key") or headers.get("x-goog-api-key"))
        return out

    def upstream_models(self) -> list[str | None]:
        return [
            (r.body or {}).get("model") or r.path.rsplit("/", 1)[-1].split(":")[0]
            for r in self.upstream.requests
        ]


@pytest.fixture(scope="package")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("resilience")
    upstream = FakeUpstream().start()
    tokens = FakeTokenServer().start()
    for name, behaviour in TOKEN_SCENARIOS.items():
        tokens.behave(name, **behaviour)
    creds = root / "credentials"
    creds.mkdir()
    for name, value in FILES.items():
        (creds / name).write_text(value + "\n")
    tokens.public_keys["sa"] = write_service_account(creds, tokens.url("sa"))
    repo = PolicyRepo(root / "policy")
    gateway = GatewayProcess(
        repo.path, root / "state", "--credentials-dir", str(creds), env=SECRETS
    )
    table = providers(upstream.url, tokens, closed_port())
    built = Rig(upstream, tokens, gateway, repo, creds, new_secret(), new_secret(), table)
    built.write_policy()
    repo.commit("resilience policy")
    try:
        gateway.start()
        yield built
    finally:
        gateway.stop()
        tokens.stop()
        upstream.stop()


@pytest.fixture
def r(rig: Rig) -> Rig:
    """The shared deployment, with the fake upstream's records and faults cleared."""
    rig.upstream.reset()
    return rig
