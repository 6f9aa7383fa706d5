"""The policy the in-process tests serve: a provider of each protocol, a failover route, a
token-credential provider, and client keys with and without limits."""

from __future__ import annotations

from tests.support.policy_repo import PolicyRepo, hash_of, new_secret

UPSTREAM_KEY_ENV = "INPROCESS_UPSTREAM_KEY"
UPSTREAM_KEY = "upstream-credential-for-inprocess-tests"
REFRESH_TOKEN_FILE = "oauth.refresh"

PROVIDERS = f"""
providers:
  primary:
    type: openai-compatible
    base_url: http://primary.test/v1
    credentials: [env:{UPSTREAM_KEY_ENV}]
    max_retries: 0
  backup:
    type: openai-compatible
    base_url: http://backup.test/v1
    credentials: [env:{UPSTREAM_KEY_ENV}]
    max_retries: 0
  claude:
    type: anthropic
    base_url: http://claude.test
    credentials: [env:{UPSTREAM_KEY_ENV}]
  gemini:
    type: gemini
    base_url: http://gemini.test
    credentials: [env:{UPSTREAM_KEY_ENV}]
  tokens:
    type: openai-compatible
    base_url: http://tokens.test/v1
    credentials:
      - oauth2:
          token_url: http://auth.test/oauth/token
          client_id: gateway
          refresh_token: file:{REFRESH_TOKEN_FILE}
"""

ROUTES = """
routes:
  gpt-4o-mini:
    targets: [primary/upstream-mini]
  gpt-failover:
    targets: [primary/upstream-mini, backup/upstream-mini]
  claude-sonnet:
    targets: [claude/claude-upstream]
  gemini-flash:
    targets: [gemini/gemini-upstream]
  gpt-token:
    targets: [tokens/upstream-mini]
  secret-model:
    targets: [primary/secret]
"""


def write_policy(repo: PolicyRepo) -> dict[str, str]:
    """Commit the policy; the secrets of its keys: `alice` (gpt-*, claude-*, gemini-*),
    `limited` (2 requests a minute), `admin` (an admin token)."""
    secrets = {"alice": new_secret(), "limited": new_secret(), "admin": new_secret()}
    repo.write("providers.yaml", PROVIDERS)
    repo.write("routes.yaml", ROUTES)
    repo.write("limits.yaml", "default: {}\ntiers: {}\n")
    repo.write(
        "keys.yaml",
        f"""
        keys:
          - id: alice
            hash: {hash_of(secrets["alice"])}
            models: ["gpt-*", "claude-*", "gemini-*"]
          - id: limited
            hash: {hash_of(secrets["limited"])}
            limits: {{rpm: 2}}
        admins:
          - id: ops
            hash: {hash_of(secrets["admin"])}
        """,
    )
    repo.commit("in-process test policy")
    return secrets
