"""The real client programs against the real gateway and a scripted upstream of each
provider type, all inside the loopback-only namespace that `tests/loopback-only` makes.

The programs phone home (telemetry, updates, feature flags) even with those switched off,
so they run only where nothing but loopback exists: outside it they are skipped, and in CI
that is a failure, not a skip.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.clients.agent_script import COMPLETION_TOKENS, PROMPT_TOKENS, Script
from tests.clients.agent_upstream import AgentUpstream
from tests.clients.programs import NODE_BIN, Program, Run
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret

PROVIDER_TYPES = ("openai-compatible", "openai", "anthropic", "gemini", "azure-openai")


def _unavailable(needs_node: bool) -> str | None:
    interfaces = [name for _, name in socket.if_nameindex()]
    if os.environ.get("MG_LOOPBACK_ONLY") != "1" or interfaces != ["lo"]:
        return "client programs run only in the loopback-only namespace: use ./dev just test"
    if not needs_node:
        return None
    if not (NODE_BIN / "claude").exists():
        return "client programs are not installed: ./dev just client-deps"
    node = shutil.which("node")
    version = (
        subprocess.run([node, "--version"], capture_output=True, text=True).stdout if node else ""
    )
    if not version.startswith("v") or int(version[1:].split(".")[0]) < 20:
        return f"the client programs need Node.js 20 or newer (found {version.strip() or 'none'})"
    return None


@pytest.fixture(scope="module", autouse=True)
def _programs_available(request: pytest.FixtureRequest) -> None:
    reason = _unavailable(needs_node=request.module.__name__ != "tests.clients.test_libraries")
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Outcome:
    run: Run
    token: str
    upstream_answers: int
    tool_result_sent: bool
    recorded: dict[str, int]
    """The key's totals the gateway recorded during the run (requests, errors, tokens)."""

    def explain(self) -> str:
        return f"exit {self.run.exit_code}, recorded {self.recorded}\n{self.run.output[-3000:]}"


class ClientsDeployment:
    """One gateway whose only route, "*", is re-pointed by a git commit per provider type."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.upstream = AgentUpstream().start()
        self.repo = PolicyRepo(root / "policy")
        self.key, self.admin = new_secret(), new_secret()
        self._write_policy("openai-compatible")
        self.repo.commit("client programs: first policy")
        self.gateway = GatewayProcess(self.repo.path, root / "state").start()

    def stop(self) -> None:
        self.gateway.stop()
        self.upstream.stop()

    def _write_policy(self, provider_type: str) -> None:
        base = self.upstream.url + ("/v1" if provider_type.startswith("openai") else "")
        self.repo.write(
            "providers.yaml",
            f"""
            providers:
              upstream:
                type: {provider_type}
                base_url: {base}
                credentials: [env:FAKE_UPSTREAM_KEY]
                max_retries: 0
            """,
        )
        self.repo.write("routes.yaml", 'routes:\n  "*": {targets: ["upstream/*"]}\n')
        self.repo.write("limits.yaml", "default: {}\ntiers: {}\n")
        self.repo.write(
            "keys.yaml",
            f"""
            keys:
              - id: agent
                hash: "{hash_of(self.key)}"
            admins:
              - id: ops
                hash: "{hash_of(self.admin)}"
            """,
        )

    def use(self, provider_type: str) -> None:
        self._write_policy(provider_type)
        if self.repo.git("status", "--porcelain"):  # the first policy may be this one already
            commit = self.repo.commit(f"client programs: route to a {provider_type} upstream")
        else:
            commit = self.repo.head()
        deadline = time.monotonic() + 15
        while self._status()["policy"]["commit"] != commit:
            assert time.monotonic() < deadline, f"policy {commit[:12]} was not applied"
            time.sleep(0.05)

    def _status(self) -> dict[str, object]:
        response = httpx.get(self.gateway.url + "/admin/api/status", headers=self._admin())
        return dict(response.json())

    def _admin(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.admin}"}

    def totals(self) -> dict[str, int]:
        response = httpx.get(
            self.gateway.url + "/admin/api/usage", params={"key": "agent"}, headers=self._admin()
        )
        return dict(response.json()["keys"][0]["since_start"])

    def exercise(
        self, provider_type: str, plan: Script, token: str, act: Callable[[], Run]
    ) -> Outcome:
        """Route to `provider_type`, play `plan` upstream, run the client (`act`), and read
        what the gateway recorded for it."""
        self.use(provider_type)
        self.upstream.reset(plan)
        before = self.totals()
        run = act()
        answers = self.upstream.answers()
        expected = PROMPT_TOKENS * answers, COMPLETION_TOKENS * answers
        # Recording happens just after each answer: give the last one a moment to land.
        deadline = time.monotonic() + 5
        while True:
            after = self.totals()
            recorded = {k: after[k] - before.get(k, 0) for k in after}
            got = recorded["prompt_tokens"], recorded["completion_tokens"]
            if got == expected or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        sent = any(token in str(s.body) for s in self.upstream.served)
        return Outcome(run, token, answers, sent, recorded)

    def drive(self, program: Program, provider_type: str, model: str, tmp: Path) -> Outcome:
        workdir, home = tmp / "work", tmp / "home"
        workdir.mkdir()
        home.mkdir()
        token = new_token()
        secret = workdir / "secret.txt"
        secret.write_text(token + "\n")
        plan = Script(program.tool, program.tool_arguments(secret))
        return self.exercise(
            provider_type,
            plan,
            token,
            lambda: program.run(self.gateway.url, self.key, model, home, workdir),
        )


def new_token() -> str:
    """What only the tool's result holds: the client's final answer quoting it proves the
    round trip."""
    return "mg-file-says-" + secrets.token_hex(6)


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientsDeployment]:
    deployment = ClientsDeployment(tmp_path_factory.mktemp("clients"))
    yield deployment
    deployment.stop()


def check(outcome: Outcome) -> None:
    """What every run must show: exit 0 with the upstream's answer quoting the tool's result,
    the result sent upstream, every request a success, and the tokens the upstream reported."""
    assert outcome.run.exit_code == 0, outcome.explain()
    assert outcome.token in outcome.run.output, outcome.explain()
    assert outcome.tool_result_sent, outcome.explain()
    assert outcome.upstream_answers >= 2, outcome.explain()
    assert outcome.recorded["errors"] == 0, outcome.explain()
    assert outcome.recorded["prompt_tokens"] == PROMPT_TOKENS * outcome.upstream_answers
    assert outcome.recorded["completion_tokens"] == COMPLETION_TOKENS * outcome.upstream_answers
