"""The Policy and Routes tabs against a real gateway: applied and rejected commits, history
with diffs in operators' words, routes, and credentials cooling down (by reference only)."""

from __future__ import annotations

from textual.widgets import DataTable, Markdown

from tests.conftest import Deployment
from tests.support.fake_upstream import Fault
from tests.support.gateway_process import FAKE_UPSTREAM_KEY
from tests.tui.conftest import chat, make_app, screen_text, screen_texts, wait_until
from tui.app import ModelGateApp


def policy_state(app: ModelGateApp) -> dict[str, object]:
    return dict((app.status or {}).get("policy") or {})


async def test_rejected_commit_is_shown_with_its_error_and_history_has_diffs(
    tui_deployment: Deployment,
) -> None:
    d = tui_deployment
    good = d.repo.head()
    app = make_app(d)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await wait_until(pilot, lambda: policy_state(app).get("commit") == good, "the status")
        history = app.query_one("#history-table", DataTable)
        await wait_until(pilot, lambda: history.row_count == 1, "the history")
        diff = app.query_one("#commit-diff", Markdown)
        header = app.query_one("#commit-header")
        await wait_until(pilot, lambda: "Added" in diff.source, "the first commit's diff")
        assert "alice" in diff.source and "initial policy" in str(header.render())

        d.repo.write("routes.yaml", "routes:\n  broken:\n    targets: [nowhere/model]\n")
        bad = d.repo.commit("route to a provider that does not exist")
        await wait_until(pilot, lambda: policy_state(app).get("state") == "rejected", "rejection")
        await wait_until(pilot, lambda: history.row_count == 2, "the new commit in the history")
        status = str(app.query_one("#policy-status").render())
        assert f"rejected {bad[:12]}" in status and "nowhere" in status
        assert f"applied {good[:12]}" in status
        assert "rejected" in str(app.query_one("#status-line").render())
        marks = [str(history.get_row_at(i)[0]) for i in range(2)]
        assert marks == ["✗", "●"]  # the rejected head, the applied commit

        await pilot.press("up")  # the newest (rejected) commit
        await wait_until(pilot, lambda: "does not validate" in diff.source, "its diff")
        assert "route to a provider" in str(header.render())
        assert "nowhere" in screen_text(app) or "nowhere" in diff.source


async def test_routes_providers_and_a_cooling_credential(tui_deployment: Deployment) -> None:
    d = tui_deployment
    app = make_app(d)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        routes = app.query_one("#routes-table", DataTable)
        await wait_until(pilot, lambda: routes.row_count == 3, "the routes")
        rows = {str(routes.get_row_at(i)[0]): routes.get_row_at(i) for i in range(3)}
        assert str(rows["gpt-4o-mini"][3]) == "fake/upstream-mini"
        assert str(rows["gpt-4o-mini"][1]) == "fallback"
        providers = app.query_one("#providers-table", DataTable)
        assert [str(c) for c in providers.get_row_at(0)][:3] == [
            "fake",
            "openai-compatible",
            "env:FAKE_UPSTREAM_KEY",
        ]

        d.upstream.fail_next(Fault(429, headers={"retry-after": "30"}))
        assert (await chat(d)).status_code == 503
        await wait_until(
            pilot,
            lambda: "cooling" in str(providers.get_row_at(0)[3]),
            "the credential cooling down",
        )
        assert str(routes.get_row_at(0)[2]) == "ok"  # cooling recovers by itself: usable
        assert all(FAKE_UPSTREAM_KEY not in text for text in screen_texts(app))
