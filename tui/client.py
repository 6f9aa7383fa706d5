"""The gateway's admin API, as the terminal UI uses it (httpx; no Textual here).

Every failure is an AdminError whose message tells the operator what to do next; the admin
token never appears in one. Status and usage come typed as gateway/payloads.py describes them,
but unchecked: a gateway of another version may lack a field, so readers use `.get`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, cast

import httpx

from gateway.payloads import Status, Usage
from tui.sse import SseEvent, SseParser

OPENED = "open"
"""The `event` of the synthetic first item `events()` yields once the stream is accepted."""

TIMEOUT_S = 5.0
STREAM_IDLE_S = 45.0
"""No byte (not even a heartbeat) for this long means the stream is dead: reconnect."""


class AdminError(Exception):
    """A call to the admin API failed; `str()` says why and what to do."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TokenRefused(AdminError):
    """401 or 403: retrying with the same token will not help."""


class AdminApi(Protocol):
    """What the UI needs from a gateway (a fake in snapshot tests)."""

    url: str

    async def status(self) -> Status: ...

    async def usage(self) -> Usage: ...

    async def sync(self) -> dict[str, Any]: ...

    def events(self, last_event_id: int | None) -> AsyncIterator[SseEvent]: ...

    async def aclose(self) -> None: ...


class AdminClient:
    """One gateway's admin API over one pooled httpx client."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout_s,
            transport=transport,  # the environment's proxies and CA files apply (trust_env)
        )

    def __repr__(self) -> str:
        return f"AdminClient({self.url!r})"  # never the token

    async def status(self) -> Status:
        return cast(Status, await self._json("GET", "/admin/api/status"))

    async def usage(self) -> Usage:
        return cast(Usage, await self._json("GET", "/admin/api/usage"))

    async def sync(self) -> dict[str, Any]:
        """Ask the gateway to apply the watched ref now (it would within a poll anyway)."""
        return await self._json("POST", "/admin/api/sync", accept_status=(502,))

    async def events(self, last_event_id: int | None) -> AsyncIterator[SseEvent]:
        """One connection to the event stream: an OPENED item, then events until it ends."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        timeout = httpx.Timeout(TIMEOUT_S, read=STREAM_IDLE_S)
        try:
            async with self._http.stream(
                "GET", "/admin/api/events", headers=headers, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise self._refusal(response)
                yield SseEvent(OPENED, "")
                parser = SseParser()
                async for line in response.aiter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    async def aclose(self) -> None:
        await self._http.aclose()

    # internals ----------------------------------------------------------------------------

    async def _json(
        self, method: str, path: str, accept_status: tuple[int, ...] = ()
    ) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.status_code != 200 and response.status_code not in accept_status:
            raise self._refusal(response)
        try:
            body = response.json()
        except ValueError:
            raise AdminError(
                f"{self.url}{path} did not answer with JSON: is {self.url} a ModelGate gateway?"
            ) from None
        if not isinstance(body, dict):
            raise AdminError(f"{self.url}{path} answered with unexpected JSON")
        return body

    def _unreachable(self, exc: httpx.TransportError) -> AdminError:
        kind = type(exc).__name__
        if isinstance(exc, httpx.ConnectError):
            return AdminError(
                f"cannot reach the gateway at {self.url} (connection refused): "
                "is `modelgate serve` running there?"
            )
        if isinstance(exc, httpx.TimeoutException):
            return AdminError(f"the gateway at {self.url} did not answer in time ({kind})")
        return AdminError(f"the connection to {self.url} failed ({kind})")

    def _refusal(self, response: httpx.Response) -> AdminError:
        status = response.status_code
        if status == 401:
            return TokenRefused(
                "the gateway does not accept this admin token (401): pass a token listed under "
                "`admins:` in keys.yaml with --admin-token or MG_ADMIN_TOKEN",
                status,
            )
        if status == 403:
            return TokenRefused(
                "this token is a client key, not an admin token (403): use a token listed "
                "under `admins:` in keys.yaml",
                status,
            )
        return AdminError(f"the gateway answered {status}: {_message(response)}", status)


def _message(response: httpx.Response) -> str:
    """The error message of an OpenAI-shaped error body, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return str(body)[:200]
