"""The terminal UI against a real gateway on loopback and a real policy repository."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input, Static

from tests.conftest import Deployment
from tests.support.policy_repo import PolicyRepo, standard_policy
from tui.app import ModelGateApp, TuiOptions
from tui.client import AdminClient

FAST = {"poll_s": 0.3, "repo_poll_s": 0.2}


def make_app(
    d: Deployment | None = None,
    *,
    repo: Path | None = None,
    gateway: bool = True,
    with_repo: bool = True,
    **kwargs: Any,
) -> ModelGateApp:
    """The app as `modelgate tui --gateway URL --admin-token T --repo PATH` starts it."""
    client = AdminClient(d.gateway.url, d.keys["admin"]) if d is not None and gateway else None
    repo_path = repo if repo is not None else (d.repo.path if d and with_repo else None)
    options = TuiOptions(repo=repo_path, **FAST)
    return ModelGateApp(options, client, **kwargs)


async def wait_until(
    pilot: Pilot[Any], condition: Callable[[], object], what: str, timeout_s: float = 15.0
) -> None:
    """Let the app run until `condition()` holds; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await pilot.pause(0.05)


async def chat(d: Deployment, key: str = "alice", model: str = "gpt-4o-mini") -> httpx.Response:
    """One chat completion through the gateway, without blocking the app's loop."""
    async with httpx.AsyncClient(trust_env=False) as http:
        return await http.post(
            d.gateway.url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {d.keys[key]}"},
            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )


async def fill(pilot: Pilot[Any], selector: str, text: str, submit: bool = True) -> None:
    """Put `text` in the focused screen's input (as a paste would), then press Enter."""
    field = pilot.app.screen.query_one(selector, Input)
    assert field.has_focus, f"{selector} should have the focus"
    field.value = text
    if submit:
        await pilot.press("enter")
    await pilot.pause()


def screen_text(app: App[Any]) -> str:
    """The current screen as plain text, line by line (what a terminal would show)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    # As App.export_screenshot renders it, but kept as text: reviewable goldens.
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    console.print(update)
    lines = console.export_text(styles=False).splitlines()
    return "\n".join(line.rstrip() for line in lines) + "\n"


def screen_texts(app: App[Any]) -> list[str]:
    """Everything the UI could show now: the screen, every label of every screen on the
    stack, and the notifications."""
    texts = [screen_text(app)]
    for screen in app.screen_stack:
        texts += [str(widget.render()) for widget in screen.query(Static)]
    texts += [note.message for note in app._notifications]
    return texts


@pytest.fixture
def tui_deployment(deployment: Deployment) -> Deployment:
    return deployment


@pytest.fixture
def edit_repo(policy_repo: PolicyRepo) -> PolicyRepo:
    """The standard policy, for tests that edit without a gateway (edit-only mode)."""
    standard_policy(policy_repo, "http://127.0.0.1:9")
    return policy_repo
