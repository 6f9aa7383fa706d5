"""Edits in edit-only mode (--repo, no gateway): disable, rotate, routes, tiers, a moved ref,
a branch for a pull request, and watch-only refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input

from tests.support.policy_repo import PolicyRepo
from tests.tui.conftest import fill, make_app, screen_text, wait_until
from tui.app import ModelGateApp
from tui.messages import EditRequested
from tui.screens.confirm import ConfirmScreen
from tui.screens.review import ReviewScreen
from tui.screens.route_forms import RouteFormScreen, TierFormScreen
from tui.screens.secret import SecretScreen


async def reviewed(pilot: Pilot[Any], app: ModelGateApp) -> ReviewScreen:
    await wait_until(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review")
    review = app.screen
    assert isinstance(review, ReviewScreen)
    await wait_until(pilot, lambda: review.checked, "the policy check")
    assert review.problems == [], review.problems
    return review


async def committed(pilot: Pilot[Any], app: ModelGateApp, repo: PolicyRepo, before: str) -> str:
    await wait_until(pilot, lambda: repo.head() != before, "the commit")
    await wait_until(pilot, lambda: app.repo_head == repo.head(), "the app to see it")
    return repo.head()


async def test_disable_then_rotate_a_key(edit_repo: PolicyRepo) -> None:
    app = make_app(repo=edit_repo.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: app.keys_view.policy is not None, "the keys")
        await pilot.press("down")  # bob
        assert app.keys_view.selected == "bob"
        before = edit_repo.head()
        await pilot.press("d")
        await reviewed(pilot, app)
        await pilot.press("ctrl+s")
        await committed(pilot, app, edit_repo, before)
        assert "disabled: true" in edit_repo.git("show", "HEAD:keys.yaml")
        assert edit_repo.git("log", "-1", "--format=%s") == "tui: disable key bob"
        await wait_until(pilot, lambda: app.keys_view.key("bob").disabled, "bob disabled")  # type: ignore[union-attr]
        before = edit_repo.head()
        await pilot.press("d")  # and enable again
        await reviewed(pilot, app)
        await pilot.press("ctrl+s")
        await committed(pilot, app, edit_repo, before)
        assert "disabled" not in edit_repo.git("show", "HEAD:keys.yaml")
        assert edit_repo.git("log", "-1", "--format=%s") == "tui: enable key bob"

        old_hash = edit_repo.git("show", "HEAD:keys.yaml")
        before = edit_repo.head()
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await reviewed(pilot, app)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, SecretScreen), "the new secret")
        title = str(app.screen.query_one(".dialog-title").render())
        assert title == "Key bob rotated: its secret"
        await pilot.press("enter")
        await committed(pilot, app, edit_repo, before)
        assert edit_repo.git("show", "HEAD:keys.yaml") != old_hash


async def test_edit_a_route_and_add_a_tier(edit_repo: PolicyRepo) -> None:
    app = make_app(repo=edit_repo.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await wait_until(pilot, lambda: app.routes_view.policy is not None, "the routes")
        await pilot.press("e")  # gpt-4o-mini, the first route
        form = app.screen
        assert isinstance(form, RouteFormScreen) and form.route_name == "gpt-4o-mini"
        assert form.query_one("#f-targets", Input).value == "fake/upstream-mini"
        await fill(pilot, "#f-targets", "fake/upstream-mini=3, fake/embed-small", submit=False)
        form.query_one("#f-strategy", Input).value = "weighted"
        await pilot.press("ctrl+s")
        await reviewed(pilot, app)
        before = edit_repo.head()
        await pilot.press("escape")  # keep editing: add a tier to the same commit
        await pilot.press("t")
        assert isinstance(app.screen, TierFormScreen)
        await fill(pilot, "#f-name", "standard", submit=False)
        app.screen.query_one("#f-rpm", Input).value = "120"
        app.screen.query_one("#f-tokens_per_day", Input).value = "2_000_000"
        await pilot.press("ctrl+s")
        review = await reviewed(pilot, app)
        assert len(review.draft) == 2
        await pilot.press("ctrl+s")
        await committed(pilot, app, edit_repo, before)
        routes = edit_repo.git("show", "HEAD:routes.yaml")
        assert "strategy: weighted" in routes and "weight: 3" in routes
        limits = edit_repo.git("show", "HEAD:limits.yaml")
        assert "standard" in limits and "2000000" in limits
        assert edit_repo.git("log", "-1", "--format=%s").startswith("tui: set route gpt-4o-mini;")


async def test_a_moved_ref_is_said_and_the_edits_reapplied(edit_repo: PolicyRepo) -> None:
    app = make_app(repo=edit_repo.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: app.keys_view.policy is not None, "the keys")
        await pilot.press("d")  # disable alice
        await reviewed(pilot, app)
        edit_repo.write("limits.yaml", "default: {rpm: 7}\ntiers: {}\n")
        theirs = edit_repo.commit("someone else: default rpm 7")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        question = str(app.screen.query_one(".question").render())
        assert f"moved to {theirs[:12]}" in question
        assert edit_repo.head() == theirs  # nothing committed before the operator answers
        await pilot.press("y")
        review = await reviewed(pilot, app)
        assert review.draft.base == theirs
        assert theirs[:7] in str(review.query_one("#review-title").render())
        await pilot.press("ctrl+s")
        head = await committed(pilot, app, edit_repo, theirs)
        assert edit_repo.git("rev-parse", "HEAD^") == theirs
        assert "rpm: 7" in edit_repo.git("show", f"{head}:limits.yaml")
        assert "disabled: true" in edit_repo.git("show", f"{head}:keys.yaml")


@pytest.fixture
def origin(edit_repo: PolicyRepo, tmp_path: Path) -> Path:
    """A bare repository as the Git host, the policy repository's `origin`."""
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    edit_repo.git("remote", "add", "origin", str(bare))
    return bare


def remote_head(bare: Path, ref: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(bare), "rev-parse", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


async def test_commit_on_a_new_branch_and_push_it(edit_repo: PolicyRepo, origin: Path) -> None:
    before = edit_repo.head()
    app = make_app(repo=edit_repo.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: app.keys_view.policy is not None, "the keys")
        await pilot.press("d")
        review = await reviewed(pilot, app)
        review.query_one("#f-branch", Input).value = "ops/disable-alice"
        review.query_one("#push", Checkbox).value = True
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, ReviewScreen), "the commit")
        notes = [n.message for n in app._notifications]
        assert any("pull request from ops/disable-alice" in n for n in notes), notes
    assert edit_repo.head() == before  # the watched ref did not move
    branch = edit_repo.git("rev-parse", "ops/disable-alice")
    assert remote_head(origin, "refs/heads/ops/disable-alice") == branch


async def test_watch_only_refuses_edits() -> None:
    app = make_app()  # no repository: watch-only (here without a gateway either)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "n", "e", "d", "r", "3", "n", "t", "e")
        assert app.screen is app.screen_stack[0]  # no form, no question opened
        assert app.edits.draft is None
        assert "read-only" in str(app.query_one("#status-line").render())
        footer = screen_text(app).splitlines()[-1]
        assert "New route" not in footer and "Edit" not in footer and "Help" in footer
        app.post_message(EditRequested("key.create"))  # even when asked directly
        await pilot.pause()
        assert any("--repo PATH" in n.message for n in app._notifications)
