"""examples/policy-repo's workflow posts the plan beside the diff on every pull request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml_rs

WORKFLOW = Path(__file__).resolve().parents[2] / "examples/policy-repo/.github/workflows/policy.yml"


def test_the_workflow_posts_the_plan_with_the_diff() -> None:
    workflow: dict[str, Any] = yaml_rs.loads(WORKFLOW.read_text())  # type: ignore[assignment]
    steps: list[dict[str, Any]] = workflow["jobs"]["check"]["steps"]
    names = [step.get("name", "") for step in steps]
    plan = steps[names.index("Plan the change on recorded traffic")]
    assert names.index("Summarize the change") < names.index("Plan the change on recorded traffic")
    assert names.index("Plan the change on recorded traffic") < names.index(
        "Comment on the pull request"
    )
    assert 'modelgate policy plan "origin/${{ github.base_ref }}" HEAD' in plan["run"]
    assert "--gateway" in plan["run"] and ">> policy-diff.md" in plan["run"]
    assert plan["env"]["MG_ADMIN_TOKEN"] == "${{ secrets.MODELGATE_ADMIN_TOKEN }}"
    assert "always()" in plan["if"] and "pull_request" in plan["if"]
