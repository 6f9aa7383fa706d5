"""Upstream credential pools: selection, cooldown after a 429, removal after a 401/403.

Pool state (positions, cooldowns, removals) is keyed by provider name and credential
reference, so it survives policy reloads. A removed credential comes back when its
reference resolves to a different value (the file or variable was changed) or when the
policy stops naming it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from credentials.refs import CredentialUnavailable, resolve_ref
from policies.models import Provider

FILE_RECHECK_S = 1.0


@dataclass(frozen=True, slots=True)
class Credential:
    ref: str
    """The reference as written in the policy (safe to log)."""
    value: str | None
    """The secret; None for a provider without credentials. Never log it."""


@dataclass(slots=True)
class _CredentialState:
    cooling_until: float = 0.0
    removed_value_fingerprint: int | None = None
    removed_reason: str | None = None


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
    """Every credential of the provider is cooling down or removed."""

    def __init__(self, retry_after_s: float | None) -> None:
        super().__init__("every credential is cooling down")
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

    def _state(self, provider_name: str, ref: str) -> _CredentialState:
        key = (provider_name, ref)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _CredentialState()
        return state

    def candidates(self, provider_name: str, provider: Provider) -> Iterator[Credential]:
        """Usable credentials in the order this request should try them.

        Raises AllCoolingDown (with the soonest recovery) when none is usable now.
        """
        refs = provider.credentials
        if not refs:
            yield Credential("none", None)
            return
        now = self._clock()
        start = 0
        if provider.selection == "round-robin":
            start = self._positions.get(provider_name, 0) % len(refs)
            self._positions[provider_name] = start + 1
        soonest: float | None = None
        yielded = False
        for offset in range(len(refs)):
            ref = refs[(start + offset) % len(refs)]
            state = self._state(provider_name, ref)
            try:
                value = self._resolver.resolve(ref, now)
            except CredentialUnavailable:
                continue
            if state.removed_value_fingerprint is not None:
                if state.removed_value_fingerprint == hash(value):
                    continue
                state.removed_value_fingerprint = state.removed_reason = None
            if state.cooling_until > now:
                wait = state.cooling_until - now
                soonest = wait if soonest is None else min(soonest, wait)
                continue
            yielded = True
            yield Credential(ref, value)
        if not yielded:
            raise AllCoolingDown(soonest)

    def cool_down(self, provider_name: str, ref: str, seconds: float) -> None:
        state = self._state(provider_name, ref)
        state.cooling_until = max(state.cooling_until, self._clock() + seconds)

    def remove(self, provider_name: str, credential: Credential, reason: str) -> None:
        """Take a credential out until its value changes (the upstream refused it)."""
        if credential.value is None:
            return
        state = self._state(provider_name, credential.ref)
        state.removed_value_fingerprint = hash(credential.value)
        state.removed_reason = reason

    def status(self) -> list[dict[str, object]]:
        """Cooling and removed credentials, by reference (never values)."""
        now = self._clock()
        out: list[dict[str, object]] = []
        for (provider_name, ref), state in sorted(self._states.items()):
            cooling = max(0.0, state.cooling_until - now)
            if cooling or state.removed_reason:
                out.append(
                    {
                        "provider": provider_name,
                        "credential": ref,
                        "cooling_down_s": round(cooling, 1),
                        "removed": state.removed_reason,
                    }
                )
        return out
