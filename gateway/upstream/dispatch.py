"""Stage ⑤: open an upstream response, trying credentials, retries and targets in order.

A failure is classified once, here:
- a credential error (429: cool it down; 401/403: take it out) moves to the next credential;
- a transient error (5xx, connection error, timeout) is retried with backoff, then fails over;
- a client error (any other 4xx) is passed back at once and never retried elsewhere.
Only the opening is retried: once a response's first byte reached the client, no retry.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import orjson

from credentials.pool import AllCoolingDown, Credential, CredentialPools
from gateway.errors import Protocol, Unavailable, UpstreamClientError, UpstreamFailed
from gateway.upstream.endpoints import FAMILY, Op, auth_headers, upstream_url
from gateway.upstream.strategy import RouteCursors
from policies.snapshot import ResolvedRoute, Target

log = logging.getLogger("modelgate.upstream")

BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 2.0

BodyFor = Callable[[Target], bytes]
"""Builds the upstream body for one target (translating when its protocol differs)."""
ForwardHeaders = tuple[Protocol, dict[str, str]]
"""Client headers to pass on to targets that speak the client's own protocol."""


@dataclass(slots=True)
class Opened:
    """An upstream response whose status is 2xx; the caller reads and closes it."""

    target: Target
    response: httpx.Response
    credential_ref: str


@dataclass(slots=True)
class _Outcome:
    cooling: list[float] = field(default_factory=list)
    last_error: str = "no target could be tried"
    all_cooling: bool = True


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def upstream_error_message(body: bytes) -> str:
    """The human message of an upstream error body (all three protocols use error.message)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "the upstream rejected the request"
    if isinstance(data, list) and data:  # Gemini streams errors as a one-element array
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return str(err["message"])
    if isinstance(err, str):
        return err
    return "the upstream rejected the request"


def _is_invalid_key(status: int, body: bytes) -> bool:
    return status in (401, 403) or (status == 400 and b"API_KEY_INVALID" in body)


class Dispatcher:
    def __init__(
        self,
        client: httpx.AsyncClient,
        pools: CredentialPools,
        cursors: RouteCursors,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._pools = pools
        self._cursors = cursors
        self._sleep = sleep

    async def open(
        self,
        route: ResolvedRoute,
        op: Op,
        stream: bool,
        body_for: BodyFor,
        forward: ForwardHeaders | None = None,
    ) -> Opened:
        """The first 2xx answer; `forward` headers go only to targets of the client's protocol."""
        outcome = _Outcome()
        for target in self._cursors.order(route):
            extra = forward[1] if forward and FAMILY[target.provider.type] is forward[0] else None
            opened = await self._try_target(target, op, stream, body_for, outcome, extra)
            if opened is not None:
                return opened
        if outcome.all_cooling and outcome.cooling:
            retry = max(1, int(min(outcome.cooling) + 0.999))
            raise Unavailable(
                f"Every upstream credential for '{route.model}' is cooling down after rate "
                f"limits. Retry in {retry} s.",
                headers={"retry-after": str(retry)},
            )
        raise UpstreamFailed(
            f"The upstream for '{route.model}' failed ({outcome.last_error}). Retry later; "
            "if it persists, tell the gateway's operators."
        )

    async def _try_target(
        self,
        target: Target,
        op: Op,
        stream: bool,
        body_for: BodyFor,
        outcome: _Outcome,
        extra_headers: dict[str, str] | None,
    ) -> Opened | None:
        provider = target.provider
        try:
            credentials = list(self._pools.candidates(target.provider_name, provider))
        except AllCoolingDown as cooling:
            if cooling.retry_after_s is not None:
                outcome.cooling.append(cooling.retry_after_s)
            outcome.last_error = "all credentials cooling down"
            return None
        content = body_for(target)
        url = upstream_url(provider, op, target.upstream_model, stream)
        timeout = httpx.Timeout(
            provider.timeout_s,
            connect=provider.connect_timeout_s,
            read=provider.first_byte_timeout_s or provider.timeout_s,
        )
        for credential in credentials:
            opened = await self._try_credential(
                target, credential, url, content, timeout, outcome, extra_headers
            )
            if opened is not None:
                return opened
        return None

    async def _try_credential(
        self,
        target: Target,
        credential: Credential,
        url: str,
        content: bytes,
        timeouts: httpx.Timeout,
        outcome: _Outcome,
        extra_headers: dict[str, str] | None,
    ) -> Opened | None:
        provider = target.provider
        headers = auth_headers(provider, credential.value)
        if extra_headers:
            headers.update(extra_headers)
        for attempt in range(provider.max_retries + 1):
            if attempt:
                await self._sleep(
                    random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))
                )
            request = self._client.build_request(
                "POST", url, content=content, headers=headers, timeout=timeouts
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx.TimeoutException:
                outcome.all_cooling = False
                outcome.last_error = "timed out"
                continue
            except httpx.TransportError as exc:
                outcome.all_cooling = False
                outcome.last_error = f"connection failed: {type(exc).__name__}"
                continue
            status = response.status_code
            if status < 400:
                return Opened(target, response, credential.ref)
            body = await _read_and_close(response)
            if status == 429:
                wait = _retry_after(response)
                seconds = provider.cooldown_s if wait is None else wait
                self._pools.cool_down(target.provider_name, credential.ref, seconds)
                outcome.cooling.append(seconds)
                outcome.last_error = "rate limited by the upstream"
                log.warning(
                    "credential cooling down",
                    extra={
                        "provider": target.provider_name,
                        "credential": credential.ref,
                        "seconds": seconds,
                    },
                )
                return None
            outcome.all_cooling = False
            if _is_invalid_key(status, body):
                self._pools.remove(target.provider_name, credential, f"upstream answered {status}")
                outcome.last_error = "an upstream credential was refused"
                log.error(
                    "credential refused by upstream; taken out of the pool",
                    extra={
                        "provider": target.provider_name,
                        "credential": credential.ref,
                        "status": status,
                    },
                )
                return None
            if status < 500 and status != 408:
                raise UpstreamClientError(status, upstream_error_message(body))
            outcome.last_error = f"upstream answered {status}"
        return None


async def _read_and_close(response: httpx.Response) -> bytes:
    try:
        return await response.aread()
    except httpx.HTTPError:
        return b""
    finally:
        await response.aclose()
