"""examples/policy-repo: a valid policy, and a workflow that runs check and diff."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml_rs

from gateway.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy-repo"


def test_the_example_passes_policy_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", "--repo", str(EXAMPLE)]) == 0, capsys.readouterr()


def test_the_workflow_checks_and_comments() -> None:
    workflow = yaml_rs.loads((EXAMPLE / ".github" / "workflows" / "policy.yml").read_text())
    steps = workflow["jobs"]["check"]["steps"]
    commands = "\n".join(step.get("run", "") for step in steps)
    assert "modelgate policy check --format github" in commands
    assert 'modelgate policy diff "origin/${{ github.base_ref }}" HEAD' in commands
    assert "gh pr comment" in commands
    assert workflow["permissions"]["pull-requests"] == "write"
    checkout = next(step for step in steps if step.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
