"""A real OAuth2 token endpoint on 127.0.0.1, for tests of token credentials.

`POST /token/{name}` answers the refresh-token grant and the JWT bearer grant (RFC 7523).
Each `name` is a scenario of its own (`behave(name, ...)`: lifetime, delay, failure), so one
server serves many providers. A JWT assertion is verified with the public key registered
for its name, and its claims are recorded. Tokens are `tok-{name}-{n}`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web

from tests.support.loop_thread import LoopThread, serve_app

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class Behaviour:
    expires_in: float = 3600
    delay_s: float = 0.0
    status: int | None = None
    """Answer this status with `error` instead of a token."""
    error: str = "invalid_grant"
    rotate_refresh_token: bool = False


@dataclass
class Issued:
    name: str
    form: dict[str, str]
    token: str | None
    claims: dict[str, Any] | None = None
    jwt_headers: dict[str, Any] | None = None


@dataclass
class FakeTokenServer:
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    issued: list[Issued] = field(default_factory=list)
    public_keys: dict[str, str] = field(default_factory=dict)
    """name -> PEM public key that JWT assertions for `name` must verify with."""
    port: int = 0

    def __post_init__(self) -> None:
        self._thread = LoopThread()
        self._runner: web.AppRunner | None = None

    def start(self) -> FakeTokenServer:
        app = web.Application()
        app.router.add_post("/token/{name}", self._token)
        self._runner, self.port = self._thread.run(serve_app(app))
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._thread.run(self._runner.cleanup())
        self._thread.stop()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/token/{name}"

    def behave(self, name: str, **changes: Any) -> None:
        self.behaviours[name] = Behaviour(**changes)

    def count(self, name: str) -> int:
        return sum(1 for issued in self.issued if issued.name == name)

    def tokens(self, name: str) -> list[str | None]:
        return [issued.token for issued in self.issued if issued.name == name]

    async def _token(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        form = {k: str(v) for k, v in (await request.post()).items()}
        behaviour = self.behaviours.get(name, Behaviour())
        record = Issued(name, form, None)
        self.issued.append(record)
        if behaviour.delay_s:
            await asyncio.sleep(behaviour.delay_s)
        if behaviour.status is not None:
            return web.json_response({"error": behaviour.error}, status=behaviour.status)
        if form.get("grant_type") == JWT_BEARER:
            failure = self._verify(name, form.get("assertion", ""), record)
            if failure is not None:
                return web.json_response({"error": "invalid_grant"}, status=400)
        elif form.get("grant_type") != "refresh_token" or not form.get("refresh_token"):
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        record.token = f"tok-{name}-{self.count(name)}"
        answer: dict[str, Any] = {
            "access_token": record.token,
            "token_type": "Bearer",
            "expires_in": behaviour.expires_in,
        }
        if behaviour.rotate_refresh_token:
            answer["refresh_token"] = f"rotated-{name}-{self.count(name)}"
        return web.json_response(answer)

    def _verify(self, name: str, assertion: str, record: Issued) -> str | None:
        key = self.public_keys.get(name)
        if key is None:
            return "no public key registered"
        try:
            record.claims = jwt.decode(
                assertion, key, algorithms=["RS256"], audience=self.url(name)
            )
            record.jwt_headers = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            return str(exc)
        return None
