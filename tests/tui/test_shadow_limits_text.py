"""Shadow limits read as such in the Keys and Teams tabs, after a dot, never as raw fields."""

from __future__ import annotations

from policies.models import Limits
from tui.widgets.keys_view import own_limits_text
from tui.widgets.teams_view import limits_text


def test_shadow_limits_beside_enforced_ones() -> None:
    limits = Limits(rpm=100, shadow=Limits(rpm=50))
    assert limits_text(limits) == "rpm=100 · shadow rpm=50"
    assert own_limits_text(limits) == "rpm=100 · shadow rpm=50"


def test_a_block_in_shadow_mode() -> None:
    limits = Limits(enforce="shadow", rpm=5, max_concurrency=2)
    assert limits_text(limits) == "shadow rpm=5 conc=2"
    assert own_limits_text(limits) == "shadow rpm=5 conc=2"
    assert "enforce" not in own_limits_text(limits)


def test_enforced_limits_only_read_as_before() -> None:
    assert own_limits_text(Limits(rpm=3)) == "rpm=3"
    assert limits_text(Limits()) == "none"
