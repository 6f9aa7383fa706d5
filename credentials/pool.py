"""Upstream credential pools: selection, cooldown after a 429, removal after a 401/403.

Pool state (positions, cooldowns, removals, cached access tokens) is keyed by provider name
and credential label (the reference as written, or a token credential's label), so it
survives policy reloads. A removed credential comes back when the secret behind it changes
(the credential file was rewritten) or when its provider's entry in the policy changes.
Cooling does not hide a credential from `usable` (it recovers by itself); removal and an
unresolvable reference do.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from credentials.aws_keys import AwsAccessKey, resolve_aws_key
from credentials.oauth import TokenError, TokenSource
from credentials.refs import CredentialUnavailable, resolve_ref
from gateway.payloads import CredentialState, CredentialStatus
from policies.models import AwsCredential, CredentialSpec, Provider, TokenCredential

log = logging.getLogger("modelgate.credentials")

FILE_RECHECK_S = 1.0
NO_CREDENTIAL = "none"


@dataclass(frozen=True, slots=True)
class Credential:
    ref: str
    """The reference as written in the policy, or a token credential's label (safe to log)."""
    value: str | None
    """The secret; None for a token credential or a provider without credentials. Never log."""
    token: TokenSource | None = None
    """Obtains the secret (a Bearer access token) for a token credential."""
    fingerprint: int | None = None
    """Identifies the secrets behind the credential, to notice when they change."""
    aws: AwsAccessKey | None = None
    """The AWS access key of an `{aws: ...}` entry (bedrock), which signs requests."""


@dataclass(slots=True)
class _CredentialState:
    cooling_until: float = 0.0
    cooling_reason: str | None = None
    removed_fingerprint: int | None = None
    removed_under: Provider | None = None
    removed_reason: str | None = None
    unavailable: str | None = None
    source: TokenSource | None = None


class CredentialResolver:
    """Resolves env:/file: references, re-reading a file at most once per second."""

    def __init__(self, credentials_dir: Path, environ: Mapping[str, str] | None = None) -> None:
        self._dir = credentials_dir
        self._environ = environ if environ is not None else os.environ
        self._cache: dict[str, tuple[float, str]] = {}

    def resolve(self, ref: str, now: float) -> str:
        if ref.startswith("env:"):
            return resolve_ref(ref, self._dir, self._environ)
        cached = self._cache.get(ref)
        if cached is not None and now - cached[0] < FILE_RECHECK_S:
            return cached[1]
        value = resolve_ref(ref, self._dir, self._environ)
        self._cache[ref] = (now, value)
        return value


class AllCoolingDown(Exception):
    """No credential of the provider is usable now.

    `retry_after_s`: the soonest recovery of a cooling credential; None when none is cooling
    (every one was refused by the upstream or cannot be resolved).
    """

    def __init__(self, retry_after_s: float | None) -> None:
        super().__init__("no credential is usable now")
        self.retry_after_s = retry_after_s


class CredentialPools:
    """Selection and health of every provider's credentials, shared by all requests."""

    def __init__(
        self, resolver: CredentialResolver, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._resolver = resolver
        self._clock = clock
        self._states: dict[tuple[str, str], _CredentialState] = {}
        self._positions: dict[str, int] = {}
        self.on_cool_down: Callable[[str, str, float, str], None] | None = None
        """Told of every cooldown this process starts (provider, ref, seconds, reason):
        a gateway's other workers sit the credential out too (gateway/usage/fanout.py)."""

    def _state(self, provider_name: str, label: str) -> _CredentialState:
        key = (provider_name, label)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _CredentialState()
        return state

    def candidates(self, provider_name: str, provider: Provider) -> Iterator[Credential]:
        """Usable credentials in the order this request should try them.

        Raises AllCoolingDown (with the soonest recovery) when none is usable now.
        """
        specs = provider.credentials
        if not specs:
            yield Credential(NO_CREDENTIAL, None)
            return
        now = self._clock()
        start = 0
        if provider.selection == "round-robin":
            start = self._positions.get(provider_name, 0) % len(specs)
            self._positions[provider_name] = start + 1
        soonest: float | None = None
        yielded = False
        for offset in range(len(specs)):
            spec = specs[(start + offset) % len(specs)]
            credential, state = self._examine(provider_name, provider, spec, now)
            if credential is None:
                continue
            if state.cooling_until > now:
                wait = state.cooling_until - now
                soonest = wait if soonest is None else min(soonest, wait)
                continue
            yielded = True
            yield credential
        if not yielded:
            raise AllCoolingDown(soonest)

    def usable(self, provider_name: str, provider: Provider) -> str | None:
        """None when some credential can serve now or after its cooldown, else why not."""
        if not provider.credentials:
            return None
        now = self._clock()
        reasons = []
        for spec in provider.credentials:
            credential, state = self._examine(provider_name, provider, spec, now)
            if credential is not None:
                return None
            reasons.append(f"{spec}: {state.removed_reason or state.unavailable}")
        return "no usable credential (" + "; ".join(reasons) + ")"

    def _examine(
        self, provider_name: str, provider: Provider, spec: CredentialSpec, now: float
    ) -> tuple[Credential | None, _CredentialState]:
        """The credential when it is in the pool (perhaps cooling), else None."""
        label = spec if isinstance(spec, str) else spec.label
        state = self._state(provider_name, label)
        try:
            if isinstance(spec, str):
                value = self._resolver.resolve(spec, now)
                credential = Credential(label, value, None, hash(value))
            elif isinstance(spec, AwsCredential):
                key = resolve_aws_key(spec, lambda ref: self._resolver.resolve(ref, now))
                credential = Credential(label, None, None, hash(key), aws=key)
            else:
                source = self._source(state, spec, provider)
                credential = Credential(label, None, source, source.fingerprint())
        except CredentialUnavailable as exc:
            state.unavailable = f"unavailable: {exc.reason}"
            return None, state
        state.unavailable = None
        if state.removed_reason is not None:
            if state.removed_fingerprint == credential.fingerprint and _same(state, provider):
                return None, state
            state.removed_reason = state.removed_fingerprint = state.removed_under = None
            log.info(
                "credential back in the pool",
                extra={"provider": provider_name, "credential": label},
            )
        return credential, state

    def _source(
        self, state: _CredentialState, spec: TokenCredential, provider: Provider
    ) -> TokenSource:
        source = state.source
        if source is not None and source.spec is not spec:
            if source.spec == spec:
                source.spec = spec  # the same credential in a newer policy: keep its token
            else:
                source = None
        if source is None:
            source = state.source = TokenSource(
                spec,
                lambda ref: self._resolver.resolve(ref, self._clock()),
                connect_timeout_s=provider.connect_timeout_s,
                clock=self._clock,  # token lifetimes on the pool's clock (fake in tests)
            )
        return source

    def cool_down(
        self,
        provider_name: str,
        ref: str,
        seconds: float,
        reason: str = "rate limited by the upstream",
        *,
        announce: bool = True,
    ) -> None:
        """Sit the credential out `seconds` from now (replacing any earlier cooldown);
        `announce=False` for a cooldown another worker announced."""
        state = self._state(provider_name, ref)
        state.cooling_until = self._clock() + seconds
        state.cooling_reason = reason
        if announce and self.on_cool_down is not None:
            self.on_cool_down(provider_name, ref, seconds, reason)

    def remove(
        self, provider_name: str, provider: Provider, credential: Credential, reason: str
    ) -> None:
        """Take a credential out until its secret or its provider's policy changes."""
        if credential.fingerprint is None:
            return  # a provider without credentials: nothing to take out
        state = self._state(provider_name, credential.ref)
        state.removed_fingerprint = credential.fingerprint
        state.removed_under = provider
        state.removed_reason = reason
        if credential.token is not None:
            credential.token.invalidate()

    def token_failed(
        self,
        provider_name: str,
        provider: Provider,
        credential: Credential,
        error: TokenError | CredentialUnavailable,
    ) -> None:
        """A token could not be had: refused grants are removed, other failures cool."""
        if isinstance(error, CredentialUnavailable):
            self._state(provider_name, credential.ref).unavailable = f"unavailable: {error.reason}"
        elif error.refused:
            self.remove(provider_name, provider, credential, f"token refused: {error.reason}")
        else:
            reason = f"token refresh failed: {error.reason}"
            self.cool_down(provider_name, credential.ref, provider.cooldown_s, reason)

    def status(self) -> list[CredentialStatus]:
        """Credentials with something to say, by reference or label (never values)."""
        now = self._clock()
        out: list[CredentialStatus] = []
        for (provider_name, ref), state in sorted(self._states.items()):
            cooling = max(0.0, state.cooling_until - now)
            kind: CredentialState
            reason: str | None
            if state.removed_reason:
                kind, reason = "removed", state.removed_reason
            elif state.unavailable:
                kind, reason = "unavailable", state.unavailable
            elif cooling:
                kind, reason = "cooling", state.cooling_reason
            elif state.source is not None:
                kind, reason = "ok", None
            else:
                continue
            entry: CredentialStatus = {
                "provider": provider_name,
                "credential": ref,
                "state": kind,
                "reason": reason,
                "cooling_down_s": round(cooling, 1),
                "removed": state.removed_reason,
            }
            if state.source is not None:
                expires = state.source.expires_in()
                entry["token_expires_in_s"] = None if expires is None else round(expires, 1)
                entry["token_refreshes"] = state.source.refreshes
            out.append(entry)
        return out


def _same(state: _CredentialState, provider: Provider) -> bool:
    """The provider's policy is the one the credential was removed under."""
    if state.removed_under is provider:
        return True
    if state.removed_under == provider:
        state.removed_under = provider  # a reload that left the provider as it was
        return True
    return False
