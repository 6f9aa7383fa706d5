"""Token credentials: access tokens the gateway obtains and refreshes itself.

Two grants: an OAuth2 refresh-token grant (RFC 6749 section 6), and a Google service
account's JWT bearer grant (RFC 7523: an RS256 JWT signed with the account's private key,
exchanged at its `token_uri`). A token is cached and refreshed `REFRESH_EARLY_S` before it
expires (half its lifetime for short-lived tokens); concurrent requests that find it stale
share one refresh. Tokens, refresh tokens, secrets and token-endpoint answers are never
logged or put in an error: errors carry the credential's label and the OAuth error code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from credentials.refs import CredentialUnavailable
from policies.models import OAuth2Grant, TokenCredential

REFRESH_EARLY_S = 60.0
TOKEN_REQUEST_TIMEOUT_S = 30.0
JWT_LIFETIME_S = 3600
DEFAULT_EXPIRES_IN_S = 3600.0
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# OAuth error codes (RFC 6749 5.2) that mean the grant itself is bad: retrying cannot help.
REFUSING_ERRORS = frozenset(
    {"invalid_grant", "invalid_client", "unauthorized_client", "unsupported_grant_type"}
)

Resolve = Callable[[str], str]
"""The secret behind a reference (env:/file:); raises CredentialUnavailable."""


class TokenError(Exception):
    """A token could not be obtained. `refused`: the endpoint refused the grant itself."""

    def __init__(self, reason: str, *, refused: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refused = refused


class TokenSource:
    """Access tokens for one token credential: cached, refreshed early, one refresh at once."""

    def __init__(
        self,
        spec: TokenCredential,
        resolve: Resolve,
        *,
        connect_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.label = spec.label
        self._resolve = resolve
        self._timeout = httpx.Timeout(TOKEN_REQUEST_TIMEOUT_S, connect=connect_timeout_s)
        self._clock = clock
        self._wall_clock = wall_clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._expires_at = 0.0
        self._inflight: asyncio.Future[str] | None = None
        # A refresh token the server rotated, kept while the referenced one is unchanged.
        self._rotated: tuple[str, str] | None = None
        self.refreshes = 0
        """Token requests made (for status and tests)."""

    def fingerprint(self) -> int:
        """Changes when any secret behind the credential changes; raises CredentialUnavailable."""
        return hash(self._inputs())

    def _inputs(self) -> tuple[str, ...]:
        grant = self.spec.oauth2
        if grant is not None:
            secret = self._resolve(grant.client_secret) if grant.client_secret else ""
            return (self._resolve(grant.refresh_token), secret)
        assert self.spec.google_service_account is not None
        return (self._resolve(self.spec.google_service_account),)

    def expires_in(self) -> float | None:
        """Seconds the cached token stays valid, or None without one."""
        if self._token is None:
            return None
        return max(0.0, self._expires_at - self._clock())

    def invalidate(self) -> None:
        """Forget the cached token (the upstream refused it)."""
        self._token = None
        self._refresh_at = self._expires_at = 0.0

    async def access_token(self, http: httpx.AsyncClient) -> str:
        """A valid access token; raises TokenError or CredentialUnavailable."""
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        flight = self._inflight
        if flight is None:
            flight = self._inflight = asyncio.ensure_future(self._refresh(http))
            flight.add_done_callback(self._landed)
        # Shielded: a caller that goes away must not cancel the refresh the others wait for.
        return await asyncio.shield(flight)

    def _landed(self, flight: asyncio.Future[str]) -> None:
        self._inflight = None
        if not flight.cancelled():
            flight.exception()  # retrieved here, even when every waiter went away

    async def _refresh(self, http: httpx.AsyncClient) -> str:
        self.refreshes += 1
        grant = self.spec.oauth2
        referenced = ""
        if grant is not None:
            referenced = self._resolve(grant.refresh_token)
            url, form = self._refresh_token_form(grant, referenced)
        else:
            url, form = self._jwt_bearer_form()
        started = self._clock()
        answer = await self._post(http, url, form)
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise TokenError("the token endpoint's answer has no access_token", refused=False)
        lifetime = _expires_in(answer.get("expires_in"))
        rotated = answer.get("refresh_token")
        if grant is not None and isinstance(rotated, str) and rotated:
            self._rotated = (referenced, rotated)
        self._token = token
        self._expires_at = started + lifetime
        self._refresh_at = started + lifetime - min(REFRESH_EARLY_S, lifetime / 2)
        return token

    def _refresh_token_form(
        self, grant: OAuth2Grant, referenced: str
    ) -> tuple[str, dict[str, str]]:
        refresh_token = referenced
        if self._rotated is not None and self._rotated[0] == referenced:
            refresh_token = self._rotated[1]  # the server rotated it; the file is older
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": grant.client_id,
        }
        if grant.client_secret:
            form["client_secret"] = self._resolve(grant.client_secret)
        if grant.scope:
            form["scope"] = grant.scope
        return grant.token_url, form

    def _jwt_bearer_form(self) -> tuple[str, dict[str, str]]:
        ref = self.spec.google_service_account
        assert ref is not None
        account = _service_account(ref, self._resolve(ref))
        token_uri = str(account.get("token_uri") or GOOGLE_TOKEN_URI)
        now = int(self._wall_clock())
        claims = {
            "iss": account["client_email"],
            "scope": " ".join(self.spec.scopes),
            "aud": token_uri,
            "iat": now,
            "exp": now + JWT_LIFETIME_S,
        }
        key_id = account.get("private_key_id")
        headers = {"kid": key_id} if isinstance(key_id, str) and key_id else None
        import jwt  # PyJWT and cryptography load only for service accounts (~20 ms a start)

        try:
            assertion = jwt.encode(claims, account["private_key"], "RS256", headers=headers)
        except (ValueError, TypeError, jwt.PyJWTError):
            raise CredentialUnavailable(
                ref, "its private_key is not a PEM RSA private key: download a new JSON key"
            ) from None
        return token_uri, {"grant_type": JWT_BEARER_GRANT, "assertion": assertion}

    async def _post(
        self, http: httpx.AsyncClient, url: str, form: dict[str, str]
    ) -> dict[str, Any]:
        request = http.build_request(
            "POST",
            url,
            data=form,
            headers={"accept": "application/json"},
            timeout=self._timeout,
        )
        try:
            async with asyncio.timeout(TOKEN_REQUEST_TIMEOUT_S):
                response = await http.send(request)
        except (TimeoutError, httpx.TimeoutException):
            raise TokenError("the token endpoint did not answer in time", refused=False) from None
        except httpx.HTTPError as exc:
            reason = f"the token endpoint could not be reached ({type(exc).__name__})"
            raise TokenError(reason, refused=False) from None
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            answer = None
        if response.status_code >= 400 or not isinstance(answer, dict):
            raise _refusal(response.status_code, answer)
        return answer


def _refusal(status: int, answer: object) -> TokenError:
    code = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(code, str) and code.isascii() and len(code) <= 64:
        refused = code in REFUSING_ERRORS
        advice = " (check the client and refresh token)" if refused else ""
        return TokenError(f"the token endpoint answered {status} {code}{advice}", refused=refused)
    return TokenError(f"the token endpoint answered {status}", refused=status in (400, 401, 403))


def _expires_in(value: object) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return DEFAULT_EXPIRES_IN_S
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return DEFAULT_EXPIRES_IN_S


def _service_account(ref: str, text: str) -> dict[str, Any]:
    try:
        account = orjson.loads(text)
    except orjson.JSONDecodeError:
        account = None
    if (
        not isinstance(account, dict)
        or not isinstance(account.get("client_email"), str)
        or not isinstance(account.get("private_key"), str)
    ):
        raise CredentialUnavailable(
            ref, "it is not a service-account JSON key with client_email and private_key"
        )
    return account
