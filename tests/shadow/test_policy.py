"""The YAML of shadow limits: `enforce: shadow` for a whole block, `shadow:` beside enforced
ones; mistakes reported as file:line:col; tiers and key overrides merged mode by mode."""

from __future__ import annotations

from decimal import Decimal

import pytest

from policies.models import Limits
from policies.scopes import scope_of
from tests.policies.test_loader import files, problems_of


@pytest.mark.parametrize(
    ("limits_yaml", "problem"),
    [
        (
            "default: {enforce: off, rpm: 5}\n",
            "limits.yaml:1:20: 'enforce' must be one of 'on' or 'shadow' (got 'off')",
        ),
        (
            "default: {rpm: 5, shadow: {rpm: 2, enforce: on}}\n",
            "limits.yaml:1:27: 'shadow': a `shadow` block is all shadow",
        ),
        (
            "default: {rpm: 5, shadow: {shadow: {rpm: 1}}}\n",
            "limits.yaml:1:27: 'shadow': a `shadow` block is all shadow",
        ),
        (
            "tiers:\n  gold:\n    enforce: shadow\n    rpm: 5\n    shadow: {rpm: 2}\n",
            "limits.yaml:5:13: 'shadow': this block says `enforce: shadow`",
        ),
        (
            "default: {shadow: {rmp: 2}}\n",
            "limits.yaml:1:20: unknown field 'rmp'",
        ),
    ],
)
def test_mistakes_point_at_file_line_col(limits_yaml: str, problem: str) -> None:
    found = problems_of(files({"limits.yaml": limits_yaml}))
    assert len(found) == 1 and found[0].startswith(problem), found


def test_both_shapes_compile_to_enforced_and_shadow_limits() -> None:
    whole = scope_of("key", "k", Limits.model_validate({"enforce": "shadow", "rpm": 5}))
    assert (whole.limits, whole.shadow, whole.checked) == (Limits(), Limits(rpm=5), True)
    beside = scope_of("key", "k", Limits.model_validate({"rpm": 10, "shadow": {"rpm": 5}}))
    assert (beside.limits, beside.shadow) == (Limits(rpm=10), Limits(rpm=5))
    on = scope_of("key", "k", Limits.model_validate({"enforce": "on", "usd_per_day": 2}))
    assert (on.limits.usd_per_day, on.shadow, on.usd_per_day) == (Decimal(2), None, 2_000_000)
    budget = scope_of("team", "t", Limits.model_validate({"shadow": {"usd_per_day": 2}}))
    assert (budget.usd_per_day, budget.shadow_usd_per_day) == (None, 2_000_000)
    assert budget.checked and not budget.counts_requests


def test_a_key_override_merges_over_its_tier_mode_by_mode() -> None:
    tier = Limits.model_validate({"enforce": "shadow", "rpm": 100, "tpm": 5000})
    key = Limits.model_validate({"rpm": 10})
    merged = scope_of("key", "k", key.merged_over(tier))
    assert merged.limits == Limits(rpm=10)
    assert merged.shadow == Limits(rpm=100, tpm=5000)
    trial = Limits.model_validate({"enforce": "shadow", "rpm": 5})
    tried = scope_of("key", "k", trial.merged_over(Limits(rpm=10, tpm=50)))
    assert (tried.limits, tried.shadow) == (Limits(rpm=10, tpm=50), Limits(rpm=5))
    assert Limits(rpm=3).merged_over(Limits(tpm=4)) == Limits(rpm=3, tpm=4)
