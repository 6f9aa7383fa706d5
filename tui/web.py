"""`modelgate tui --web`: the same Textual app in a browser, served by textual-serve, behind
the admin token.

textual-serve starts one app process per browser connection (its websocket) and serves the
page, its static files and that websocket from an aiohttp app. Every route of it is guarded
here: a browser signs in with a POST form (the token never travels in a URL), which sets an
HttpOnly, SameSite=Strict session cookie, a random id the server keeps in memory; only that
cookie opens the page and the websocket. The app processes get the admin token from the
environment (MG_ADMIN_TOKEN), never on a command line.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import os
import secrets
import shlex
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from textual_serve.server import Server

COOKIE = "mg_tui_session"
SESSION_S = 12 * 3600
"""A sign-in lasts this long; then the browser signs in again."""
REFUSAL_DELAY_S = 0.5
"""A wrong token waits this long before its answer, so guessing is slow."""
OPEN_PATHS = frozenset({"/login"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Sessions:
    """Signed-in browsers: random ids and when each expires (one process, in memory)."""

    lifetime_s: float = SESSION_S
    clock: Callable[[], float] = time.monotonic
    _expiry: dict[str, float] = field(default_factory=dict)

    def open(self) -> str:
        now = self.clock()
        self._expiry = {s: t for s, t in self._expiry.items() if t > now}
        session = secrets.token_urlsafe(32)
        self._expiry[session] = now + self.lifetime_s
        return session

    def valid(self, session: str | None) -> bool:
        expiry = self._expiry.get(session) if session else None
        return expiry is not None and expiry > self.clock()

    def close(self, session: str | None) -> None:
        if session:
            self._expiry.pop(session, None)


def tui_command(gateway: str | None, repo: Path | None, ref: str) -> str:
    """The shell command textual-serve runs per browser: this same TUI (no token in it)."""
    args = [sys.executable, "-m", "gateway.cli", "tui", "--ref", ref]
    if gateway:
        args += ["--gateway", gateway]
    if repo is not None:
        args += ["--repo", str(repo)]
    return shlex.join(args)


class GuardedServer(Server):
    """textual-serve's server with a sign-in in front of every route."""

    def __init__(
        self, command: str, token: str, host: str, port: int, public_url: str | None = None
    ) -> None:
        super().__init__(command, host=host, port=port, title="ModelGate", public_url=public_url)
        self._token = token.encode()
        self.sessions = Sessions()
        self._secure = self.public_url.startswith("https:")

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        app.router.add_get("/login", self._login_page)
        app.router.add_post("/login", self._login)
        app.router.add_post("/logout", self._logout)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        if not self.sessions.valid(request.cookies.get(COOKIE)):
            if request.path == "/" and request.method == "GET":
                raise web.HTTPSeeOther("/login")
            raise web.HTTPUnauthorized(text="Sign in at /login first.\n")
        if request.path == "/ws" and not _same_origin(request):
            # A page of another site cannot drive the TUI with this browser's cookie.
            raise web.HTTPForbidden(text="This websocket is for the TUI's own page.\n")
        return await handler(request)

    async def _login_page(self, request: web.Request) -> web.Response:
        return _page()

    async def _login(self, request: web.Request) -> web.Response:
        form = await request.post()
        offered = form.get("token")
        if not isinstance(offered, str) or not hmac.compare_digest(offered.encode(), self._token):
            await asyncio.sleep(REFUSAL_DELAY_S)
            return _page("That is not the admin token.", status=401)
        response = web.HTTPSeeOther("/")
        response.set_cookie(
            COOKIE,
            self.sessions.open(),
            max_age=SESSION_S,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self._secure,
        )
        raise response

    async def _logout(self, request: web.Request) -> web.Response:
        self.sessions.close(request.cookies.get(COOKIE))
        response = web.HTTPSeeOther("/login")
        response.del_cookie(COOKIE, path="/")
        raise response


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.host


def _page(problem: str = "", status: int = 200) -> web.Response:
    note = f'<p class="problem">{html.escape(problem)}</p>' if problem else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ModelGate: sign in</title>
<style>body{{font-family:sans-serif;background:#111;color:#eee;display:grid;
place-items:center;height:90vh}}form{{display:grid;gap:.6em;width:22em}}
.problem{{color:#f66}}input,button{{font-size:1em;padding:.4em}}</style></head>
<body><form method="post" action="/login" autocomplete="off">
<h1>ModelGate</h1>{note}
<label for="token">Admin token</label>
<input id="token" name="token" type="password" required autofocus>
<button type="submit">Sign in</button></form></body></html>
"""
    return web.Response(
        text=body,
        status=status,
        content_type="text/html",
        headers={"cache-control": "no-store", "x-frame-options": "DENY"},
    )


def serve_web(
    token: str,
    gateway: str | None,
    repo: Path | None,
    ref: str,
    host: str,
    port: int,
    public_url: str | None = None,
) -> None:
    """Serve the TUI in a browser until interrupted."""
    os.environ["MG_ADMIN_TOKEN"] = token  # inherited by the app processes, out of `ps`
    server = GuardedServer(tui_command(gateway, repo, ref), token, host, port, public_url)
    server.serve()
