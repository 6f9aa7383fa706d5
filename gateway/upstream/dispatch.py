"""Stage ⑤: open an upstream response, trying targets, credentials and retries in order.

Targets come in the route's strategy order; per target, its usable credentials in the pool's
order. An upstream error answer is classified once (upstream_errors.verdict):
- a credential error (429 or quota: cool it down; 401/403: take it out) moves to the next
  credential, then the next target;
- a transient error (5xx, 408, connection error, timeout) is retried with exponential backoff
  and full jitter, at most the provider's `max_retries` times, then fails over;
- a client error (any other 4xx) is passed back at once and never retried elsewhere.
The route's `deadline_s` bounds all of it. Only the opening is retried: once a response's
first byte may have reached the client, nothing is retried.

Timeouts of one attempt: `connect_timeout_s` (the transport's connect), `first_byte_timeout_s`
(from the attempt's start to the response headers, enforced here), `idle_timeout_s` (the
transport's read timeout, between any two reads of a stream), `timeout_s` (the whole attempt,
enforced here until the headers and by the relay after them through `Opened.deadline`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

import httpx

from credentials.oauth import TokenError
from credentials.pool import AllCoolingDown, Credential, CredentialPools
from credentials.refs import CredentialUnavailable
from gateway.errors import (
    BadRequest,
    GatewayError,
    Protocol,
    Unavailable,
    UpstreamClientError,
    UpstreamConnectionsBusy,
    UpstreamFailed,
)
from gateway.protocols import ADAPTER_OF_TYPE, PROTOCOL_OF_TYPE
from gateway.tracing.spans import note_route, traced_send, unsampled_parent
from gateway.upstream.endpoints import auth_headers, upstream_url
from gateway.upstream.http1_head import UnsafeRequestHead
from gateway.upstream.strategy import RouteCursors
from gateway.upstream.upstream_errors import (
    MAX_ERROR_BODY,
    MAX_LOGGED_MESSAGE,
    Verdict,
    client_message,
    cooldown_s,
    cooling_reason,
    upstream_error_message,
    verdict,
)
from gateway.vocabulary import Op
from policies.models import Provider
from policies.snapshot import ResolvedRoute, Target

log = logging.getLogger("modelgate.upstream")

BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 2.0


class UpstreamCall(typing.Protocol):
    """What one target is asked for (gateway.request.plan.Plan)."""

    @property
    def op(self) -> Op: ...
    @property
    def body(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ResourceCall:
    """A call to a provider's stored resources (files, batches: gateway.request.files_upstream):
    its own method and path under the provider's base URL instead of an operation's path."""

    method: str
    path: str
    """Under the base URL, its segments already percent-encoded (`/files/file-abc/content`)."""
    body: bytes = b""


PlanFor = Callable[[Target], UpstreamCall | ResourceCall]
"""The upstream call for one target (translating when its protocol differs)."""
ForwardHeaders = tuple[Protocol, dict[str, str]]
"""Client headers to pass on to targets that speak the client's own protocol."""

__all__ = [
    "Dispatcher",
    "ForwardHeaders",
    "Opened",
    "PlanFor",
    "ResourceCall",
    "UpstreamCall",
    "upstream_error_message",
]


@dataclass(slots=True)
class Opened:
    """An upstream response whose status is 2xx; the caller reads and closes it."""

    target: Target
    response: httpx.Response
    deadline: float | None = None
    """Event-loop time by which this attempt, its body or stream included, must end."""


class _Next(Enum):
    CREDENTIAL = "try the next credential"
    RETRY = "retry after a transient failure"


@dataclass(slots=True)
class _Outcome:
    """What the attempts of one request ran into, for the error the client gets."""

    deadline: float
    cooling: list[float] = field(default_factory=list)
    """Seconds until each cooling credential met recovers."""
    failed: bool = False
    """A transient failure (5xx, timeout, connection): the answer is a 502, not a 503."""
    no_credential: bool = False
    """A target had no usable credential (refused by the upstream, or unresolvable)."""
    expired: bool = False
    last_error: str = "no target could be tried"


def _transport_timeouts(provider: Provider, stream: bool) -> httpx.Timeout:
    # The transport's read timeout is the longest silence between two reads: a stream's idle
    # timeout; for a whole-body answer, the wait for its headers.
    read = provider.idle_timeout_s if stream else provider.first_byte_timeout_s
    return _timeout(provider.connect_timeout_s, read or provider.timeout_s)


@functools.lru_cache(maxsize=256)
def _timeout(connect: float, read: float) -> httpx.Timeout:
    """One Timeout object per distinct pair (they are immutable; the transport caches by them)."""
    return httpx.Timeout(None, connect=connect, read=read)


class Dispatcher:
    def __init__(
        self,
        client: httpx.AsyncClient,
        pools: CredentialPools,
        cursors: RouteCursors,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self._pools = pools
        self._cursors = cursors
        self._sleep = sleep
        self._rng = rng

    async def open(
        self,
        route: ResolvedRoute,
        stream: bool,
        plan_for: PlanFor,
        forward: ForwardHeaders | None = None,
    ) -> Opened:
        """The first 2xx answer; `forward` headers go only to targets of the client's protocol."""
        loop = asyncio.get_running_loop()
        outcome = _Outcome(deadline=loop.time() + route.route.deadline_s)
        note_route(route.name)
        for target in self._cursors.order(route):
            if loop.time() >= outcome.deadline:
                outcome.expired = True
            if outcome.expired:
                break
            extra = (
                forward[1]
                if forward and PROTOCOL_OF_TYPE[target.provider.type] is forward[0]
                else None
            )
            opened = await self._try_target(target, stream, plan_for, outcome, extra)
            if opened is not None:
                return opened
        raise _failure(route, outcome)

    async def _try_target(
        self,
        target: Target,
        stream: bool,
        plan_for: PlanFor,
        outcome: _Outcome,
        extra_headers: dict[str, str] | None,
    ) -> Opened | None:
        provider = target.provider
        try:
            credentials = list(self._pools.candidates(target.provider_name, provider))
        except AllCoolingDown as cooling:
            if cooling.retry_after_s is None:
                outcome.no_credential = True
                outcome.last_error = "no usable credential"
            else:
                outcome.cooling.append(cooling.retry_after_s)
                outcome.last_error = "every credential is cooling down"
            return None
        planned = plan_for(target)
        content = planned.body
        if isinstance(planned, ResourceCall):
            method, url = planned.method, provider.base_url.rstrip("/") + planned.path
        else:
            method, url = "POST", upstream_url(provider, planned.op, target.upstream_model, stream)
        timeouts = _transport_timeouts(provider, stream)
        failures = 0
        for credential in credentials:
            if outcome.expired:
                return None
            headers = await self._headers(target, credential, outcome, extra_headers)
            if headers is None:
                continue
            while True:
                try:
                    result = await self._attempt(
                        target, credential, (method, url), content, headers, timeouts, outcome
                    )
                except httpx.LocalProtocolError as exc:
                    raise _unsendable(target, exc, extra_headers) from None
                if isinstance(result, Opened):
                    return result
                if result is _Next.CREDENTIAL:
                    break
                failures += 1
                if failures > provider.max_retries or not await self._backoff(failures, outcome):
                    return None
        return None

    async def _headers(
        self,
        target: Target,
        credential: Credential,
        outcome: _Outcome,
        extra_headers: dict[str, str] | None,
    ) -> dict[str, str] | None:
        """The request headers with this credential, or None when its token cannot be had."""
        provider = target.provider
        if credential.token is None:
            headers = auth_headers(provider, credential.value)
        else:
            try:
                async with asyncio.timeout_at(_finite(outcome.deadline)):
                    token = await credential.token.access_token(self._client)
            except (TokenError, CredentialUnavailable) as err:
                self._token_failed(target, credential, outcome, err)
                return None
            except TimeoutError:  # the refresh goes on, shared, for later requests
                outcome.failed = outcome.expired = True
                outcome.last_error = "waiting for an upstream access token"
                return None
            headers = auth_headers(provider, None)
            headers["authorization"] = f"Bearer {token}"
        if extra_headers:
            headers.update(extra_headers)
        return headers

    def _token_failed(
        self,
        target: Target,
        credential: Credential,
        outcome: _Outcome,
        err: TokenError | CredentialUnavailable,
    ) -> None:
        provider = target.provider
        self._pools.token_failed(target.provider_name, provider, credential, err)
        if isinstance(err, TokenError) and not err.refused:
            outcome.cooling.append(provider.cooldown_s)
        else:
            outcome.no_credential = True
        outcome.last_error = "an upstream access token could not be obtained"
        log.warning(
            "upstream access token not obtained",
            extra={
                "provider": target.provider_name,
                "credential": credential.ref,
                "reason": err.reason,
            },
        )

    async def _attempt(
        self,
        target: Target,
        credential: Credential,
        method_url: tuple[str, str],
        content: bytes,
        headers: dict[str, str],
        timeouts: httpx.Timeout,
        outcome: _Outcome,
    ) -> Opened | _Next:
        provider = target.provider
        method, url = method_url
        adapter = ADAPTER_OF_TYPE[provider.type]
        if adapter.signs:
            try:  # per attempt: a signature is dated and covers these exact bytes
                headers = await adapter.sign(provider, credential, method, url, headers, content)
            except CredentialUnavailable as err:
                return self._unsigned(target, credential, outcome, err)
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempt_deadline = started + provider.timeout_s
        first_byte = provider.first_byte_timeout_s or provider.timeout_s
        headers_by = min(started + first_byte, attempt_deadline, outcome.deadline)
        if (parent := unsampled_parent()) is not None:  # a sampled one's is set in its span
            headers = {**headers, "traceparent": parent}
        request = self._client.build_request(
            method, url, content=content, headers=headers, timeout=timeouts
        )
        try:
            async with asyncio.timeout_at(_finite(headers_by)):
                response = await traced_send(self._client, target, request)
        except TimeoutError:
            return self._transient(outcome, f"no response headers within {first_byte:g} s")
        except httpx.PoolTimeout:  # the worker's own cap: any other target would wait on it too
            raise UpstreamConnectionsBusy() from None
        except httpx.TimeoutException:
            return self._transient(outcome, "timed out")
        except httpx.LocalProtocolError:
            raise  # refused before sending: no retry can help (_try_target says why)
        except httpx.TransportError as exc:
            return self._transient(outcome, f"connection failed: {type(exc).__name__}")
        status = response.status_code
        if status < 400:
            return Opened(target, response, _finite(attempt_deadline))
        body = await _read_and_close(response, attempt_deadline)
        judged = verdict(status, body)
        if judged is Verdict.CLIENT:
            raise _refused_by_upstream(target, status, body)
        if judged is Verdict.RETRY:
            return self._transient(outcome, f"upstream answered {status}")
        name = target.provider_name
        if judged is Verdict.COOL:
            seconds = cooldown_s(response, body, provider.cooldown_s, provider.max_cooldown_s)
            self._pools.cool_down(name, credential.ref, seconds, cooling_reason(status, body))
            outcome.cooling.append(seconds)
            outcome.last_error = "rate limited by the upstream"
            log.warning(
                "credential cooling down",
                extra={"provider": name, "credential": credential.ref, "seconds": seconds},
            )
        else:
            reason = f"refused by the upstream ({status})"
            self._pools.remove(name, provider, credential, reason)
            outcome.no_credential = True
            outcome.last_error = "an upstream credential was refused"
            log.error(
                "credential refused by upstream; taken out of the pool",
                extra={"provider": name, "credential": credential.ref, "status": status},
            )
        return _Next.CREDENTIAL

    @staticmethod
    def _unsigned(
        target: Target, credential: Credential, outcome: _Outcome, err: CredentialUnavailable
    ) -> _Next:
        """No key to sign with (AWS's default chain found none): the next credential."""
        outcome.no_credential = True
        outcome.last_error = "no key to sign the upstream request with"
        log.warning(
            "upstream request not signed",
            extra={
                "provider": target.provider_name,
                "credential": credential.ref,
                "reason": err.reason,
            },
        )
        return _Next.CREDENTIAL

    @staticmethod
    def _transient(outcome: _Outcome, error: str) -> _Next:
        outcome.failed = True
        outcome.last_error = error
        if asyncio.get_running_loop().time() >= outcome.deadline:
            outcome.expired = True
        return _Next.RETRY

    async def _backoff(self, failures: int, outcome: _Outcome) -> bool:
        """Sleep before retry number `failures` (full jitter); False when the deadline is near."""
        if outcome.expired:
            return False
        delay = self._rng() * min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**failures)
        if asyncio.get_running_loop().time() + delay >= outcome.deadline:
            outcome.expired = True
            return False
        await self._sleep(delay)
        return True


def _failure(route: ResolvedRoute, outcome: _Outcome) -> GatewayError:
    model = route.model
    if outcome.expired:
        return UpstreamFailed(
            f"No upstream for '{model}' answered within the route's deadline of "
            f"{route.route.deadline_s:g} s ({outcome.last_error}). Retry later; if it "
            "persists, tell the gateway's operators."
        )
    if outcome.cooling and not outcome.failed:
        retry = max(1, math.ceil(min(outcome.cooling)))
        return Unavailable(
            f"Every upstream credential for '{model}' is cooling down after rate limits. "
            f"Retry in {retry} s.",
            headers={"retry-after": str(retry)},
        )
    if outcome.failed:
        return UpstreamFailed(
            f"The upstream for '{model}' failed ({outcome.last_error}). Retry later; "
            "if it persists, tell the gateway's operators."
        )
    return UpstreamFailed(
        f"The gateway has no usable upstream credential for '{model}' right now. Tell the "
        "gateway's operators: /admin/api/status says why."
    )


def _finite(deadline: float) -> float | None:
    """None for no deadline (a policy may say .inf; event loops cannot schedule it)."""
    return deadline if math.isfinite(deadline) else None


def _unsendable(
    target: Target, exc: httpx.LocalProtocolError, forwarded: dict[str, str] | None
) -> GatewayError:
    """A request the engine would not write: a header would break its framing. No other
    credential or target is tried. A client's own header is the client's 400 (the allowlist,
    gateway/request/forwarded_headers.py, normally refuses it first); any other came from the
    gateway's configuration (the policy, a credential, an access token): the operators' 502."""
    header = exc.header if isinstance(exc, UnsafeRequestHead) else None
    if header is not None and forwarded and header in forwarded:
        return BadRequest(
            f"The {header} header holds a line break or a NUL byte. Send it on one line."
        )
    log.error(
        "upstream request refused before sending: a header is not valid HTTP",
        extra={"provider": target.provider_name, "header": header},
    )
    return UpstreamFailed(
        "The gateway could not send this request upstream: a header from its own "
        "configuration is not valid HTTP. Tell the gateway's operators (its log names the "
        "provider and the header)."
    )


def _refused_by_upstream(target: Target, status: int, body: bytes) -> UpstreamClientError:
    """The client's error, in the upstream's words summarised; the longer, still masked,
    version goes to the debug log for the operators."""
    message = upstream_error_message(body)
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "upstream refused the request",
            extra={
                "provider": target.provider_name,
                "status": status,
                "upstream_message": client_message(message, MAX_LOGGED_MESSAGE),
            },
        )
    return UpstreamClientError(status, client_message(message))


async def _read_and_close(response: httpx.Response, deadline: float) -> bytes:
    """An error answer's first MAX_ERROR_BODY bytes (b"" when it cannot be had by
    `deadline`); an upstream cannot make the gateway hold more of it."""
    body = bytearray()
    try:
        async with asyncio.timeout_at(_finite(deadline)):
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) >= MAX_ERROR_BODY:
                    del body[MAX_ERROR_BODY:]
                    break
    except (httpx.HTTPError, TimeoutError):
        return b""
    finally:
        await response.aclose()
    return bytes(body)
