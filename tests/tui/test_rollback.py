"""Rollback from the terminal UI: a history row's "roll back to this commit" through the
review (with a commit racing it), and a rejected head rolled back in two keystrokes until the
gateway is synced again."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Markdown

from tests.conftest import Deployment
from tests.support.policy_repo import PolicyRepo
from tests.tui.conftest import make_app, wait_until
from tui.app import ModelGateApp
from tui.policy_rollback import RollbackDraft
from tui.screens.confirm import ConfirmScreen
from tui.screens.review import ReviewScreen


async def rollback_review(pilot: Pilot[Any], app: ModelGateApp) -> ReviewScreen:
    await wait_until(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review")
    review = app.screen
    assert isinstance(review, ReviewScreen) and isinstance(review.draft, RollbackDraft)
    await wait_until(pilot, lambda: review.checked, "the policy check")
    return review


def review_markdown(review: ReviewScreen) -> str:
    return review.query_one("#review-markdown", Markdown).source


def policy_state(app: ModelGateApp) -> dict[str, object]:
    policy = app.status.get("policy") if app.status else None
    return dict(policy or {})


async def test_roll_back_to_a_history_entry_through_the_review_despite_a_race(
    edit_repo: PolicyRepo,
) -> None:
    initial = edit_repo.head()
    edit_repo.write("limits.yaml", "default: {rpm: 30}\ntiers: {}\n")
    tighter = edit_repo.commit("default rpm 30")
    app = make_app(repo=edit_repo.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        history = app.query_one("#history-table", DataTable)
        await wait_until(pilot, lambda: history.row_count == 2, "the history")
        await pilot.press("down", "b")  # the older commit: roll back to it
        review = await rollback_review(pilot, app)
        title = str(review.query_one("#review-title").render())
        assert f"to {initial[:7]}" in title and "undoes 1 commit(s)" in title
        assert "rpm no longer limited (was 30)" in review_markdown(review)  # head -> target
        assert review.problems == []

        edit_repo.write("routes.yaml", "routes:\n  theirs:\n    targets: [fake/x]\n")
        theirs = edit_repo.commit("someone else commits meanwhile")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        assert f"moved to {theirs[:12]}" in str(app.screen.query_one(".question").render())
        await pilot.press("n")
        assert edit_repo.head() == theirs  # nothing was written over their commit

        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("y")  # plan again from their commit: it is undone too, by name
        review = await rollback_review(pilot, app)
        assert review.draft.base == theirs
        assert "**Removed** route `theirs`" in review_markdown(review)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: edit_repo.head() != theirs, "the rollback commit")
        await wait_until(pilot, lambda: not isinstance(app.screen, ReviewScreen), "the review")
    head = edit_repo.head()
    assert edit_repo.git("rev-parse", "HEAD^") == theirs
    assert edit_repo.git("rev-parse", f"{head}^{{tree}}") == edit_repo.git(
        "rev-parse", f"{initial}^{{tree}}"
    )
    message = edit_repo.git("log", "-1", "--format=%B")
    assert message.startswith(f"Roll back to {initial[:7]} (undoes {theirs[:7]}, {tighter[:7]})")
    assert "**Removed** route `theirs`" in message


async def test_a_rejected_head_is_rolled_back_in_two_keystrokes(
    tui_deployment: Deployment,
) -> None:
    d = tui_deployment
    good = d.repo.head()
    app = make_app(d)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: policy_state(app).get("commit") == good, "the status")
        await pilot.press("R")  # nothing is rejected: nothing happens
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ReviewScreen)

        d.repo.write("routes.yaml", "routes:\n  broken:\n    targets: [nowhere/model]\n")
        bad = d.repo.commit("route to a provider that does not exist")
        await wait_until(pilot, lambda: policy_state(app).get("state") == "rejected", "rejection")
        line = str(app.query_one("#status-line").render())
        assert "rejected" in line and "R: roll back" in line

        await pilot.press("R")
        review = await rollback_review(pilot, app)
        assert review.problems == []
        assert "does not validate" in review_markdown(review)  # the head it replaces
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: d.repo.head() != bad, "the rollback commit")
        fixed = d.repo.head()
        await wait_until(
            pilot,
            lambda: (
                policy_state(app).get("state") == "synced"
                and policy_state(app).get("commit") == fixed
            ),
            "the gateway to apply the rollback",
        )
        assert policy_state(app).get("rejected_commit") is None
        assert "rejected" not in str(app.query_one("#status-line").render())
    assert d.repo.git("log", "-1", "--format=%s") == f"Roll back to {good[:7]} (undoes {bad[:7]})"
    assert d.repo.git("rev-parse", "HEAD^{tree}") == d.repo.git("rev-parse", f"{good}^{{tree}}")
