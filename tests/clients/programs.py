"""How each client program is pointed at the gateway: by its base URL and its own config,
in a HOME of its own, with telemetry, update checks and error reports off.

Each program is asked one task that needs one tool call: read a file whose content only the
file holds. Its final output quoting that content proves the call and its result made the
round trip through the gateway (and through translation, where the route crosses protocols).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.clients.agent_script import TOOL_MARKER

NODE_BIN = Path(__file__).parent / "node_modules" / ".bin"
TIMEOUT_S = 90


@dataclass(frozen=True)
class Run:
    exit_code: int
    output: str


@dataclass(frozen=True)
class Program:
    name: str
    tool: str
    """The read-only tool the scripted upstream makes the program call."""

    def tool_arguments(self, file: Path) -> dict[str, Any]:
        if self.name == "codex":
            return {"cmd": f"cat {file.name}"}
        return {"file_path": str(file)}

    def run(self, gateway_url: str, key: str, model: str, home: Path, workdir: Path) -> Run:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "NO_COLOR": "1",
            "TERM": "dumb",
            "CI": "true",
        }
        argv, extra = getattr(self, f"_{self.name.replace('-', '_')}")(
            gateway_url, key, model, home
        )
        prompt = f"Read the file secret.txt and tell me what it says. {TOOL_MARKER}"
        try:
            done = subprocess.run(
                [*argv, prompt],
                cwd=workdir,
                env={**env, **extra},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as exc:
            output = (
                (exc.stdout or b"").decode(errors="replace")
                if isinstance(exc.stdout, bytes)
                else (exc.stdout or "")
            )
            return Run(-1, output + f"\n[timed out after {TIMEOUT_S} s]")
        return Run(done.returncode, done.stdout + "\n--- stderr ---\n" + done.stderr)

    @staticmethod
    def _claude_code(
        url: str, key: str, model: str, home: Path
    ) -> tuple[list[str], dict[str, str]]:
        env = {
            "ANTHROPIC_BASE_URL": url,
            "ANTHROPIC_API_KEY": key,
            "ANTHROPIC_MODEL": model,
            "ANTHROPIC_SMALL_FAST_MODEL": model,
            "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
            "ANTHROPIC_DEFAULT_SONNET_MODEL": model,
            "ANTHROPIC_DEFAULT_OPUS_MODEL": model,
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
        return [str(NODE_BIN / "claude"), "--allowedTools", "Read", "-p"], env

    @staticmethod
    def _codex(url: str, key: str, model: str, home: Path) -> tuple[list[str], dict[str, str]]:
        codex_home = home / ".codex"
        codex_home.mkdir(parents=True, exist_ok=True)
        (codex_home / "config.toml").write_text(
            f'model = "{model}"\n'
            'model_provider = "modelgate"\n'
            "[model_providers.modelgate]\n"
            'name = "ModelGate"\n'
            f'base_url = "{url}/v1"\n'
            'env_key = "MODELGATE_KEY"\n'
            'wire_api = "responses"\n'
            "[analytics]\nenabled = false\n"
            "[feedback]\nenabled = false\n"
        )
        env = {"CODEX_HOME": str(codex_home), "MODELGATE_KEY": key}
        return [str(NODE_BIN / "codex"), "exec", "--skip-git-repo-check"], env

    @staticmethod
    def _gemini_cli(url: str, key: str, model: str, home: Path) -> tuple[list[str], dict[str, str]]:
        settings = home / ".gemini" / "settings.json"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(
            json.dumps(
                {
                    "security": {"auth": {"selectedType": "gemini-api-key"}},
                    "privacy": {"usageStatisticsEnabled": False},
                    "telemetry": {"enabled": False},
                    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
                }
            )
        )
        env = {
            "GOOGLE_GEMINI_BASE_URL": url,
            "GEMINI_API_KEY": key,
            "GEMINI_CLI_TRUST_WORKSPACE": "true",
        }
        return [str(NODE_BIN / "gemini"), "-m", model, "-p"], env


CLAUDE_CODE = Program("claude-code", "Read")
CODEX = Program("codex", "exec_command")
GEMINI_CLI = Program("gemini-cli", "read_file")
