"""Policy repositories made with the `git` command, as an operator would make them."""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import textwrap
from pathlib import Path


def new_secret() -> str:
    return "mg-" + secrets.token_urlsafe(32)


def hash_of(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


class PolicyRepo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "ops@example.com")
        self.git("config", "user.name", "Ops Tester")
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.path, check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    def write(self, name: str, text: str) -> None:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip())

    def commit(self, message: str = "policy change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


def standard_policy(
    repo: PolicyRepo, upstream_url: str, extra_keys: str = "", limits: str = ""
) -> dict[str, str]:
    """A provider at the fake upstream, a few routes, an admin and two client keys."""
    keys = {"alice": new_secret(), "bob": new_secret(), "admin": new_secret()}
    repo.write(
        "providers.yaml",
        f"""
        providers:
          fake:                       # the fake OpenAI upstream
            type: openai-compatible
            base_url: {upstream_url}/v1
            credentials: [env:FAKE_UPSTREAM_KEY]
            max_retries: 1
        """,
    )
    repo.write(
        "routes.yaml",
        """
        routes:
          gpt-4o-mini:
            targets: [fake/upstream-mini]
          text-embed:
            targets: [fake/embed-small]
          secret-model:
            targets: [fake/secret]
        """,
    )
    repo.write("limits.yaml", limits or "default: {}\ntiers: {}\n")
    repo.write(
        "keys.yaml",
        f"""
        keys:
          - id: alice
            owner: alice@example.com
            hash: {hash_of(keys["alice"])}
            models: ["gpt-*", "text-*"]
          - id: bob
            hash: {hash_of(keys["bob"])}
        {textwrap.indent(textwrap.dedent(extra_keys).strip(), "  ") if extra_keys else ""}
        admins:
          - id: ops
            hash: {hash_of(keys["admin"])}
        """,
    )
    repo.commit("initial policy")
    return keys
