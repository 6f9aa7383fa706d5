"""`modelgate tui` in a real terminal (tmux): it starts, shows live traffic, switches tabs,
shows help, and quits. Its own tmux server (a private socket) keeps it apart from any other."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.cli import main
from tests.conftest import Deployment

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is missing: `just system-deps` installs it"
)


class Tmux:
    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, timeout=10
        )

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "tui").stdout

    def keys(self, *keys: str) -> None:
        for key in keys:  # one at a time: a burst may reach the app as one paste
            self.run("send-keys", "-t", "tui", key)
            time.sleep(0.1)

    def wait_for(self, condition: Callable[[str], bool], what: str, timeout_s: float = 20) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.screen()
            if condition(text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; the screen:\n{self.screen()}")

    def alive(self) -> bool:
        return self.run("has-session", "-t", "tui").returncode == 0


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path / "tmux.sock")
    yield t
    t.run("kill-server")  # only the server on this test's own socket


def test_modelgate_tui_in_a_terminal(deployment: Deployment, tmux: Tmux) -> None:
    d = deployment
    command = [
        sys.executable, "-m", "gateway.cli", "tui",
        "--gateway", d.gateway.url, "--repo", str(d.repo.path),
    ]  # fmt: skip
    started = tmux.run(
        "new-session", "-d", "-s", "tui", "-x", "100", "-y", "30",
        "-e", f"MG_ADMIN_TOKEN={d.keys['admin']}", "-e", "TERM=xterm-256color",
        # A detached window gets its size a moment after the command starts: wait for it,
        # or the UI may read the 80x24 default and miss the resize.
        "sleep 0.3; " + " ".join(command),
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    tmux.wait_for(lambda s: "● live" in s, "the live stream")
    response = httpx.post(
        d.gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {d.keys['alice']}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 200
    screen = tmux.wait_for(lambda s: "gpt-4o-mini" in s and "alice" in s, "the request row")
    assert "1 Traffic" in screen and "Pause/resume" in screen  # tabs and footer bindings
    assert len(screen.rstrip("\n").splitlines()) == 30  # the whole terminal is used

    tmux.keys("2")
    screen = tmux.wait_for(
        lambda s: all(w in s for w in ("TOKENS TODAY", "alice", "bob", "New key")), "the keys"
    )
    assert d.keys["alice"] not in screen and "sha256:" not in screen

    tmux.keys("?")
    tmux.wait_for(lambda s: "terminal UI: help" in s, "the help screen")
    tmux.keys("Escape")
    tmux.wait_for(lambda s: "terminal UI: help" not in s, "the help closed")

    tmux.keys("q")
    deadline = time.monotonic() + 10
    while tmux.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tmux.alive(), f"the UI did not quit:\n{tmux.screen()}"


def test_the_command_says_what_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("MG_GATEWAY_URL", "MG_ADMIN_TOKEN", "MG_POLICY_REPO"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> tuple[int, str]:
        code = main(["tui", *args])
        return code, capsys.readouterr().err

    code, err = run()
    assert code == 2 and "--gateway URL" in err
    code, err = run("--gateway", "http://127.0.0.1:9")
    assert code == 2 and "MG_ADMIN_TOKEN" in err
    code, err = run("--repo", str(tmp_path / "missing"))
    assert code == 2 and "modelgate init" in err
