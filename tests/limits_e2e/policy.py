"""Policy repositories for limits tests: keys with tiers and limits, changed by commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.support.policy_repo import PolicyRepo, hash_of, new_secret, standard_policy

PROVIDERS = """
providers:
  fake:                       # the fake upstream, OpenAI-compatible
    type: openai-compatible
    base_url: {url}/v1
    credentials: [env:FAKE_UPSTREAM_KEY]
    max_retries: 1
  fake-anthropic:             # the same fake, spoken to as Anthropic
    type: anthropic
    base_url: {url}
    credentials: [env:FAKE_UPSTREAM_KEY]
    max_retries: 1
  fake-gemini:                # and as Gemini (its embedding answers carry no usage)
    type: gemini
    base_url: {url}
    credentials: [env:FAKE_UPSTREAM_KEY]
    max_retries: 1
"""
ROUTES = """
routes:
  gpt-4o-mini:
    targets: [fake/upstream-mini]
  claude-fake:
    targets: [fake-anthropic/claude-upstream]
  embed-gemini:
    targets: [fake-gemini/embed-upstream]
"""


@dataclass(frozen=True)
class KeySpec:
    """One client key of a test policy; `limits` is a YAML flow mapping like "{rpm: 10}"."""

    tier: str | None = None
    limits: str | None = None


def keys_yaml(secrets: dict[str, str], specs: dict[str, KeySpec], admin_secret: str) -> str:
    lines = ["keys:"]
    for key_id, spec in specs.items():
        lines += [f"  - id: {key_id}", f"    hash: {hash_of(secrets[key_id])}"]
        if spec.tier:
            lines.append(f"    tier: {spec.tier}")
        if spec.limits:
            lines.append(f"    limits: {spec.limits}")
    lines += ["admins:", "  - id: ops", f"    hash: {hash_of(admin_secret)}", ""]
    return "\n".join(lines)


@dataclass
class LimitsPolicy:
    """A policy repository whose keys and limits tests rewrite by commit."""

    repo: PolicyRepo
    specs: dict[str, KeySpec]
    limits_yaml: str
    secrets: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls, path: Path, upstream_url: str, specs: dict[str, KeySpec], limits_yaml: str = ""
    ) -> LimitsPolicy:
        repo = PolicyRepo(path)
        # standard_policy gives the admin token; providers, routes and keys are ours.
        secrets = standard_policy(repo, upstream_url)
        policy = cls(repo, dict(specs), limits_yaml or "default: {}\ntiers: {}\n", secrets)
        for key_id in specs:
            policy.secrets[key_id] = new_secret()
        repo.write("providers.yaml", PROVIDERS.format(url=upstream_url))
        repo.write("routes.yaml", ROUTES)
        policy.commit("limited keys")
        return policy

    def commit(self, message: str) -> str:
        self.repo.write("limits.yaml", self.limits_yaml)
        self.repo.write("keys.yaml", keys_yaml(self.secrets, self.specs, self.secrets["admin"]))
        return self.repo.commit(message)

    def set_key(self, key_id: str, spec: KeySpec) -> str:
        """Change (or add) one key's limits by commit; returns the commit."""
        self.specs[key_id] = spec
        if key_id not in self.secrets:
            self.secrets[key_id] = new_secret()
        return self.commit(f"limits of {key_id}")

    @property
    def admin(self) -> str:
        return self.secrets["admin"]
