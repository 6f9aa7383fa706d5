"""`modelgate usage` reads the request log a real gateway wrote."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from tests.conftest import Deployment
from tests.support.fake_replies import COMPLETION_TOKENS, PROMPT_TOKENS

HI = [{"role": "user", "content": "hi"}]


def usage_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "usage", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def table(stdout: str) -> dict[tuple[str, str], list[str]]:
    lines = stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["KEY", "MODEL", "REQUESTS"]
    return {(cells[0], cells[1]): cells[2:] for cells in (line.split() for line in lines[1:])}


def test_usage_table_per_key_and_model(
    ops_deployment: Deployment, sdk: Callable[..., openai.OpenAI]
) -> None:
    d = ops_deployment
    alice, bob = sdk("alice"), sdk("bob")
    for _ in range(3):
        alice.chat.completions.create(model="gpt-4o-mini", messages=HI)
    with pytest.raises(openai.NotFoundError):
        alice.chat.completions.create(model="nope", messages=HI)
    list(bob.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))
    d.gateway.stop()  # the last batch is written at shutdown
    state = str(d.gateway.state_dir)

    done = usage_cmd("--state-dir", state)
    assert done.returncode == 0, done.stderr
    rows = table(done.stdout)
    assert set(rows) == {("alice", "gpt-4o-mini"), ("alice", "nope"), ("bob", "gpt-4o-mini")}
    requests, errors, tokens_in, tokens_out, cost, unpriced, p50 = rows[("alice", "gpt-4o-mini")]
    assert (requests, errors) == ("3", "0")
    assert (cost, unpriced) == ("0.000000", "3")  # the fake upstream's model has no price
    assert (int(tokens_in), int(tokens_out)) == (3 * PROMPT_TOKENS, 3 * COMPLETION_TOKENS)
    assert float(p50) > 0
    assert rows[("alice", "nope")][:2] == ["1", "1"]

    only_bob = table(usage_cmd("--state-dir", state, "--key", "bob").stdout)
    assert list(only_bob) == [("bob", "gpt-4o-mini")]
    assert table(usage_cmd("--state-dir", state, "--since", "1h").stdout) == rows
    future = usage_cmd("--state-dir", state, "--since", "2999-01-01")
    assert future.returncode == 0 and "No requests" in future.stdout


def test_usage_cmd_explains_bad_input(tmp_path: Path) -> None:
    missing = usage_cmd("--state-dir", str(tmp_path))
    assert missing.returncode == 1 and "--state-dir" in missing.stderr
    (tmp_path / "requests.sqlite3").touch()
    bad = usage_cmd("--state-dir", str(tmp_path), "--since", "yesterday")
    assert bad.returncode == 2 and "1h" in bad.stderr
