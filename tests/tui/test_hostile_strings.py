"""Strings from clients, the gateway and the repository are shown as written: never read as
markup (a closing tag alone crashed the app), never reaching the terminal as control
sequences, never longer than their place."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.policy_repo import PolicyRepo
from tests.tui.conftest import screen_text, screen_texts, wait_until
from tui import cells
from tui.app import ModelGateApp, TuiOptions
from tui.client import OPENED
from tui.sse import SseEvent

MARKUP = ["[/]", "[/bold]", "[red]x[/red]", "[@click=app.quit]q[/]", "[link=file:///x]y[/link]"]
CONTROL = "\x1b[2J\x1b]0;owned\x07\r\n\u202e\x9b"


def request_event(n: int, text: str, **fields: Any) -> SseEvent:
    data = {
        "ts": 1_800_000_000.0,
        "request_id": text,
        "key_id": text,
        "model": text,
        "provider": text,
        "target": text,
        "status": 404,
        "latency_ms": 3.0,
        "error": text,
        **fields,
    }
    return SseEvent("request", json.dumps(data), str(n))


class HostileAdmin:
    """A gateway whose every string is hostile: replayed at connect, then pushed live."""

    url = "http://gateway.test"

    def __init__(self, replayed: list[SseEvent]) -> None:
        self.replayed = replayed
        self.live: asyncio.Queue[SseEvent] = asyncio.Queue()

    async def status(self) -> dict[str, Any]:
        return {
            "policy": {
                "commit": "[/]" + CONTROL,
                "applied_at": "[/]",
                "state": "rejected[/]",
                "error": "[/]" + CONTROL,
                "rejected_commit": "[/bold]",
            },
            "credentials": [
                {"provider": "[/]", "credential": "[/]", "state": "[/]", "reason": "[/]"},
                {"provider": "p", "credential": "c", "state": "cooling", "reason": CONTROL},
            ],
            "unavailable_routes": {"[/]": "[/]" + CONTROL},
        }

    async def usage(self) -> dict[str, Any]:
        return {"keys": [{"key_id": "[/]", "owner": "[/bold]" + CONTROL, "expires": "[/]"}]}

    async def sync(self) -> dict[str, Any]:
        return {}

    async def events(self, last_event_id: int | None) -> AsyncIterator[SseEvent]:
        yield SseEvent(OPENED, "")
        for event in self.replayed:
            yield event
        while True:
            yield await self.live.get()

    async def aclose(self) -> None:
        return None


def hostile_app(admin: HostileAdmin, repo: PolicyRepo | None = None) -> ModelGateApp:
    options = TuiOptions(repo=repo.path if repo else None, poll_s=0.2, repo_poll_s=0.2)
    return ModelGateApp(options, admin)


def assert_no_control_sequences(app: ModelGateApp) -> None:
    for text in screen_texts(app):
        assert not any(c in text for c in "\x1b\x07\r\x9b\u202e"), text


async def test_markup_in_replayed_and_live_events_is_shown_as_written() -> None:
    replayed = [request_event(n, text) for n, text in enumerate(MARKUP, 1)]
    admin = HostileAdmin(replayed)
    app = hostile_app(admin)
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.traffic_view
        await wait_until(pilot, lambda: len(view.shown_records) == len(MARKUP), "replayed rows")
        await admin.live.put(request_event(10, "[/]" + CONTROL))
        await admin.live.put(request_event(11, "x" * 100_000))
        await wait_until(pilot, lambda: len(view.shown_records) == len(MARKUP) + 2, "live rows")
        await pilot.pause(0.3)  # the figures and the status line are drawn again
        assert app.is_running
        screen = screen_text(app)
        for text in ("[/]", "[/bold]", "[red]x[/red]", "[@click=app.quit]…", "[link=file:///x]y…"):
            assert text in screen, text
        detail = str(app.query_one("#traffic-detail").render())  # the newest row's id, target
        assert "x" * 50 in detail and len(detail) < 1000  # and error, each cut short
        await pilot.press("down")
        detail = str(app.query_one("#traffic-detail").render())
        assert "[/]\\x1b[2J\\x1b]0;owned\\x07\\r\\n\\u202e\\x9b" in detail
        assert_no_control_sequences(app)


async def test_markup_from_the_gateway_and_in_notifications_is_shown_as_written() -> None:
    app = hostile_app(HostileAdmin([]))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.keys_view.usage, "the usage poll")
        app.notify("[/] " + CONTROL, title="[/bold]")
        app.keys_view.notify("[/]")  # a widget's notification goes through the app
        for tab in ("2", "3", "4"):
            await pilot.press(tab)
            await pilot.pause(0.1)
            assert "[/]" in screen_text(app)
        assert app.is_running
        notes = [note.message for note in app._notifications]
        assert "[/] \\x1b[2J\\x1b]0;owned\\x07\\r\n\\u202e\\x9b" in notes and "[/]" in notes
        assert_no_control_sequences(app)


async def test_markup_in_the_repository_is_shown_as_written(
    edit_repo: PolicyRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = (edit_repo.path / "keys.yaml").read_text()
    edit_repo.write("keys.yaml", keys.replace("alice@example.com", '"[/]\\e[2J"'))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "[/bold]")
    edit_repo.commit("[/] [link=https://example.invalid]click[/link]")
    app = hostile_app(HostileAdmin([]), edit_repo)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.keys_view.policy is not None, "the policy")
        await pilot.press("2")
        await pilot.pause(0.1)
        assert "[/]\\x1b[2J" in screen_text(app)
        await pilot.press("4")
        await wait_until(pilot, lambda: len(app.policy_view.entries) == 2, "the history")
        header = app.query_one("#commit-header")
        await wait_until(pilot, lambda: "[link=" in str(header.render()), "the commit header")
        assert "[/] [link=https://example.invalid]click[/link]" in str(header.render())
        assert "[/bold]" in str(header.render()) and "[/bold]" in screen_text(app)
        assert app.is_running
        assert_no_control_sequences(app)


@pytest.mark.parametrize(
    ("value", "limit", "shown"),
    [
        ("[/]", 10, "[/]"),
        ("a\x1b[2Jb", 20, "a\\x1b[2Jb"),
        ("a\nb", 20, "a\\nb"),
        ("\u202eevil\u200b", 20, "\\u202eevil\\u200b"),
        ("abcdef", 4, "abc…"),
        ("\x00" * 10, 8, "\\x00\\x0…"),
        ("x" * 1_000_000, 300, "x" * 299 + "…"),
    ],
)
def test_safe_writes_what_a_terminal_would_act_on_as_escapes(
    value: str, limit: int, shown: str
) -> None:
    assert cells.safe(value, limit) == shown
    assert cells.plain(value, limit).plain == shown
    assert len(shown) <= limit


def test_messages_keep_their_lines() -> None:
    assert cells.message("one\ntwo\r\x1b") == "one\ntwo\\r\\x1b"
