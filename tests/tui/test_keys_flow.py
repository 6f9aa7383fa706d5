"""The Keys tab against a real gateway and repository: create a key, change a limit."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input

from tests.conftest import Deployment
from tests.support.policy_repo import PolicyRepo
from tests.tui.conftest import chat, fill, make_app, screen_texts, wait_until
from tui.app import ModelGateApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.key_form import KeyFormScreen
from tui.screens.review import ReviewScreen
from tui.screens.secret import SecretScreen
from tui.widgets.keys_view import KeysView


def applied(app: ModelGateApp) -> str | None:
    return ((app.status or {}).get("policy") or {}).get("commit")


async def open_keys(pilot: Pilot[Any], app: ModelGateApp) -> KeysView:
    await pilot.press("2")
    view = app.keys_view
    await wait_until(pilot, lambda: view.policy is not None and view.usage, "keys and usage")
    return view


async def commit_from_review(pilot: Pilot[Any], app: ModelGateApp, message: str) -> None:
    await wait_until(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review")
    review = app.screen
    assert isinstance(review, ReviewScreen)
    await wait_until(pilot, lambda: review.checked, "the policy check")
    assert review.problems == []
    await fill(pilot, "#f-message", message, submit=False)
    await pilot.press("ctrl+s")


async def test_create_a_key_see_its_commit_and_use_its_secret_once(
    tui_deployment: Deployment,
) -> None:
    d = tui_deployment
    before = d.repo.head()
    app = make_app(d)
    async with app.run_test(size=(80, 24)) as pilot:
        view = await open_keys(pilot, app)
        table = app.query_one("#keys-table", DataTable)
        assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == ["alice", "bob"]
        await pilot.press("n")
        assert isinstance(app.screen, KeyFormScreen)
        await fill(pilot, "#f-id", "search-team", submit=False)
        app.screen.query_one("#f-models", Input).value = "gpt-*"
        await pilot.press("ctrl+s")
        await commit_from_review(pilot, app, "keys: create search-team for the search team")

        await wait_until(pilot, lambda: isinstance(app.screen, SecretScreen), "the secret")
        secret = str(app.screen.query_one("#secret-value").render())
        assert secret.startswith("mg-")
        await pilot.press("c")
        assert app.clipboard == secret
        await pilot.press("enter")
        assert not isinstance(app.screen, SecretScreen)
        assert all(secret not in text for text in screen_texts(app))  # never shown twice
        assert app.edits.draft is None

        head = d.repo.head()
        assert head != before
        assert (
            d.repo.git("log", "-1", "--format=%s") == "keys: create search-team for the search team"
        )
        keys_yaml = d.repo.git("show", "HEAD:keys.yaml")
        assert "id: search-team" in keys_yaml
        assert "sha256:" + hashlib.sha256(secret.encode()).hexdigest() in keys_yaml
        assert secret not in keys_yaml
        await wait_until(pilot, lambda: applied(app) == head, "the gateway to apply it")
        await wait_until(pilot, lambda: "search-team" in view.usage, "the new key's usage")

        async with httpx.AsyncClient(trust_env=False) as http:
            response = await http.post(
                d.gateway.url + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {secret}"},
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            )
        assert response.status_code == 200
        assert response.headers["x-modelgate-policy"] == head


async def test_edit_a_limit_and_see_the_gateway_apply_it(tui_deployment: Deployment) -> None:
    d = tui_deployment
    app = make_app(d)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_keys(pilot, app)
        before = applied(app)
        assert before == d.repo.head()
        await pilot.press("e")  # alice is highlighted first
        form = app.screen
        assert isinstance(form, KeyFormScreen) and form.editing is not None
        assert form.editing.id == "alice"
        form.query_one("#f-rpm", Input).value = "1"
        await pilot.press("ctrl+s")
        review = app.screen
        await wait_until(
            pilot, lambda: isinstance(review, ReviewScreen) and review.checked, "check"
        )
        diff = str(review.query_one("#review-markdown")._markdown)  # type: ignore[attr-defined]
        assert "alice" in diff and "rpm" in diff
        await commit_from_review(pilot, app, "keys: alice gets rpm 1")

        head = d.repo.head()
        await wait_until(pilot, lambda: applied(app) == head, "the gateway to apply the commit")
        assert "rpm: 1" in d.repo.git("show", "HEAD:keys.yaml")
        first, second = await chat(d, "alice"), await chat(d, "alice")
        assert first.status_code == 200 and first.headers["x-modelgate-policy"] == head
        assert second.status_code == 429
        await wait_until(
            pilot,
            lambda: (app.keys_view.usage.get("alice") or {}).get("rpm") == {"limit": 1, "used": 1},
            "the use against the new limit",
        )
        numbers = [str(label.render()) for label in app.query(".quota-numbers")]
        assert numbers[0] == "1 of 1"


async def test_a_validation_error_blocks_the_commit(edit_repo: PolicyRepo) -> None:
    before = edit_repo.head()
    app = make_app(repo=edit_repo.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: app.keys_view.policy is not None, "the keys")
        await pilot.press("e")
        app.screen.query_one("#f-tier", Input).value = "gold"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review")
        review = app.screen
        assert isinstance(review, ReviewScreen)
        await wait_until(pilot, lambda: review.checked, "the policy check")
        assert any("gold" in p.message for p in review.problems)
        assert review.query_one("#commit", Button).disabled
        problems = str(review.query_one("#review-problems").render())
        assert "commit is blocked" in problems and "keys.yaml:" in problems
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ReviewScreen) and edit_repo.head() == before

        await pilot.press("escape")  # keep editing: the draft stays
        assert app.edits.pending == 1
        assert "1 pending: c" in str(app.query_one("#status-line").render())
        await pilot.press("q")  # pending edits: quitting asks first
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert app.is_running and app.edits.pending == 1
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review again")
        await pilot.press("ctrl+d", "y")
        assert app.edits.draft is None and not isinstance(app.screen, ReviewScreen)
    assert edit_repo.head() == before
