"""`modelgate tui --web`: the TUI in headless Chromium, behind the admin token's sign-in.

Chromium is Debian's (`just system-deps` installs it). Missing locally, the browser test is
skipped; in CI (CI=true) it fails instead, so it can never be silently not run there.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Deployment
from tests.support.gateway_process import free_port
from tests.tui.chromium import chromium, chromium_path

ANSI = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|.)")
"""Escape sequences (CSI, OSC, DCS and the like, two-byte ones): what is left is the text."""
ROW = re.compile(r"alice\s+gpt-4o-mini\s+fake\s+200\b")
"""The Traffic table's row of the request: KEY, MODEL, PROVIDER, STATUS."""


class WebTui:
    def __init__(self, gateway_url: str, token: str, log: Path) -> None:
        self.port = free_port()
        self.log = log
        env = {**os.environ, "MG_ADMIN_TOKEN": token}
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway.cli",
                    "tui",
                    "--web",
                    "--port",
                    str(self.port),
                    "--gateway",
                    gateway_url,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tui --web exited:\n{log.read_text()}")
            try:
                if httpx.get(self.url + "/login", trust_env=False).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"tui --web did not start:\n{log.read_text()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def web(deployment: Deployment, tmp_path: Path) -> Iterator[WebTui]:
    served = WebTui(deployment.gateway.url, deployment.keys["admin"], tmp_path / "web.log")
    yield served
    served.stop()


def test_every_route_needs_the_sign_in_and_the_token_never_rides_in_a_url(
    web: WebTui, deployment: Deployment
) -> None:
    token = deployment.keys["admin"]
    with httpx.Client(base_url=web.url, trust_env=False) as http:
        assert http.get("/").status_code == 303 and http.get("/").headers["location"] == "/login"
        assert http.get(f"/?token={token}").headers["location"] == "/login"  # not a sign-in
        for path in ("/ws", "/static/js/textual.js", "/download/x"):
            assert http.get(path).status_code == 401, path
        assert http.get(f"/login?token={token}").status_code == 200  # the form, nothing more
        assert "set-cookie" not in http.get(f"/login?token={token}").headers
        wrong = http.post("/login", data={"token": token + "x"})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        assert token not in wrong.text

        signed_in = http.post("/login", data={"token": token})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and token not in cookie
        assert http.get("/").status_code == 200
        assert http.get("/static/js/textual.js").status_code == 200
        # Another site's page cannot open the websocket with this browser's cookie.
        foreign = http.get("/ws", headers={"origin": "http://evil.example"})
        assert foreign.status_code == 403
        http.post("/logout")
        assert http.get("/").status_code == 303


def test_the_browser_signs_in_and_sees_a_live_row_on_the_traffic_tab(
    web: WebTui, deployment: Deployment, tmp_path: Path
) -> None:
    if chromium_path() is None:
        message = "Debian's chromium is missing: `just system-deps` installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    token = deployment.keys["admin"]
    with chromium(tmp_path / "profile") as page:
        page.call("Network.enable")
        page.call("Page.enable")
        page.call("Page.navigate", url=web.url + "/")
        page.wait_until(lambda: page.evaluate("!!document.getElementById('token')"), "the form")
        assert page.evaluate("location.pathname") == "/login"
        page.evaluate(
            f"document.getElementById('token').value = {json.dumps(token)};"
            "document.querySelector('form').submit()"
        )

        def screen() -> str:
            return ANSI.sub(b"", page.websocket_bytes()).decode("utf-8", "replace")

        page.wait_until(lambda: "Traffic" in screen(), "the TUI's Traffic tab")
        assert page.evaluate("location.pathname") == "/"
        assert page.evaluate("location.href").find(token) == -1
        assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read it
        assert "gpt-4o-mini" not in screen()

        answer = httpx.post(
            deployment.gateway.url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {deployment.keys['alice']}"},
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        page.wait_until(lambda: ROW.search(screen()), "the request's row")
        page.pump(0.5)  # the frame that drew it, painted
        png = page.screenshot(tmp_path / "traffic-tab.png")

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width == 1280 and height > 400, (width, height)
    assert len(png) > 20_000  # a drawn terminal, not a blank page
