"""Team edits from the Teams tab, committed to a real repository (edit-only mode): a new
sub-team with a budget and a key moved into it in one commit, then a team's budget changed;
teams.yaml keeps its comments."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from tests.support.policy_repo import PolicyRepo
from tests.tui.conftest import fill, make_app, wait_until
from tui.app import ModelGateApp
from tui.screens.review import ReviewScreen
from tui.screens.team_forms import MoveKeyScreen, TeamFormScreen

TEAMS_YAML = """\
# Teams of the search product; ask #search-infra before raising a budget.
teams:
  search:                     # the whole product
    owner: search-lead@example.com
    limits: {usd_per_day: 20}
"""


async def review_and_commit(pilot: Pilot[Any], app: ModelGateApp, repo: PolicyRepo) -> str:
    before = repo.head()
    await wait_until(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review")
    review = app.screen
    assert isinstance(review, ReviewScreen)
    await wait_until(pilot, lambda: review.checked, "the policy check")
    assert review.problems == [], review.problems
    await pilot.press("ctrl+s")
    await wait_until(pilot, lambda: repo.head() != before, "the commit")
    await wait_until(pilot, lambda: app.repo_head == repo.head(), "the app to see it")
    return repo.head()


async def test_create_a_team_move_a_key_into_it_then_raise_its_budget(
    edit_repo: PolicyRepo,
) -> None:
    edit_repo.write("teams.yaml", TEAMS_YAML)
    edit_repo.commit("teams: search")
    app = make_app(repo=edit_repo.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        view = app.teams_view
        await wait_until(pilot, lambda: view.policy is not None and view.rows, "the teams")
        assert view.selected == "search"

        await pilot.press("n")
        assert isinstance(app.screen, TeamFormScreen)
        await fill(pilot, "#f-name", "search-eu", submit=False)
        form = app.screen
        form.query_one("#f-owner", Input).value = "eu@example.com"
        form.query_one("#f-parent", Input).value = "search"
        form.query_one("#f-usd_per_day", Input).value = "$7.50"
        form.query_one("#f-tokens_per_day", Input).value = "1,000,000"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review")
        await pilot.press("escape")  # keep editing: the draft stays
        await wait_until(pilot, lambda: app.edits.pending == 1, "one pending edit")

        await pilot.press("m")
        assert isinstance(app.screen, MoveKeyScreen)
        await fill(pilot, "#f-key", "alice", submit=False)
        app.screen.query_one("#f-team", Input).value = "search-eu"
        await pilot.press("ctrl+s")
        await review_and_commit(pilot, app, edit_repo)

        subject = edit_repo.git("log", "-1", "--format=%s")
        assert subject == "tui: create team search-eu; move key alice to team search-eu"
        teams = edit_repo.git("show", "HEAD:teams.yaml")
        assert teams.startswith(TEAMS_YAML)  # comments and layout kept, the team appended
        assert "search-eu" in teams and "usd_per_day: 7.5" in teams
        assert "team: search-eu" in edit_repo.git("show", "HEAD:keys.yaml")
        await wait_until(pilot, lambda: [r.name for r in view.rows] == ["search", "search-eu"], "")
        assert [(r.depth, r.members) for r in view.rows] == [(0, ()), (1, ("alice",))]

        await pilot.press("e")  # search, still the highlighted row
        assert isinstance(app.screen, TeamFormScreen)
        field = app.screen.query_one("#f-usd_per_day", Input)
        assert field.value == "20"
        field.value = "25"
        await pilot.press("ctrl+s")
        await review_and_commit(pilot, app, edit_repo)
        teams = edit_repo.git("show", "HEAD:teams.yaml")
        assert "usd_per_day: 25}" in teams
        assert "# Teams of the search product" in teams and "# the whole product" in teams
        assert edit_repo.git("log", "-1", "--format=%s") == "tui: update team search (limits)"
