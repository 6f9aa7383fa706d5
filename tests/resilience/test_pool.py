"""CredentialPools: selection, cooldown (replaced by the upstream's wait), removal, status."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from credentials.oauth import TokenError
from credentials.pool import AllCoolingDown, Credential, CredentialPools, CredentialResolver
from policies.models import Provider, TokenCredential

SECRETS = {"K1": "secret-one-0123456789", "K2": "secret-two-0123456789"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def provider(*refs: object, selection: str = "round-robin", cooldown_s: float = 60) -> Provider:
    return Provider.model_validate(
        {
            "type": "openai",
            "base_url": "https://api.example.com/v1",
            "credentials": list(refs),
            "selection": selection,
            "cooldown_s": cooldown_s,
        }
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pools(tmp_path: Path, clock: Clock) -> CredentialPools:
    return CredentialPools(CredentialResolver(tmp_path, SECRETS), clock)


def refs(pools: CredentialPools, name: str, p: Provider) -> list[str]:
    return [c.ref for c in pools.candidates(name, p)]


def first(pools: CredentialPools, name: str, p: Provider) -> Credential:
    return next(iter(pools.candidates(name, p)))


def test_round_robin_rotates_the_first_choice_exactly(pools: CredentialPools) -> None:
    p = provider("env:K1", "env:K2")
    firsts = Counter(refs(pools, "p", p)[0] for _ in range(10))
    assert firsts == {"env:K1": 5, "env:K2": 5}


def test_fill_first_always_starts_with_the_first_usable(pools: CredentialPools) -> None:
    p = provider("env:K1", "env:K2", selection="fill-first")
    assert all(refs(pools, "p", p) == ["env:K1", "env:K2"] for _ in range(5))
    pools.cool_down("p", "env:K1", 10)
    assert refs(pools, "p", p) == ["env:K2"]


def test_a_cooldown_is_replaced_by_a_later_one_longer_or_shorter(
    pools: CredentialPools, clock: Clock
) -> None:
    p = provider("env:K1")
    pools.cool_down("p", "env:K1", 60)
    pools.cool_down("p", "env:K1", 5)  # the upstream's Retry-After replaces the cooldown
    with pytest.raises(AllCoolingDown) as caught:
        refs(pools, "p", p)
    assert caught.value.retry_after_s == 5
    clock.now += 5.01
    assert refs(pools, "p", p) == ["env:K1"]


def test_all_cooling_reports_the_soonest_recovery(pools: CredentialPools) -> None:
    p = provider("env:K1", "env:K2")
    pools.cool_down("p", "env:K1", 30)
    pools.cool_down("p", "env:K2", 7)
    with pytest.raises(AllCoolingDown) as caught:
        refs(pools, "p", p)
    assert caught.value.retry_after_s == 7


def test_removed_until_the_file_changes(
    pools: CredentialPools, clock: Clock, tmp_path: Path
) -> None:
    (tmp_path / "k.key").write_text("old-value-0123456789\n")
    p = provider("file:k.key", "env:K2", selection="fill-first")
    credential = first(pools, "p", p)
    assert credential.value == "old-value-0123456789"
    pools.remove("p", p, credential, "refused by the upstream (401)")
    assert refs(pools, "p", p) == ["env:K2"]
    assert pools.usable("p", p) is None  # env:K2 still serves
    (tmp_path / "k.key").write_text("new-value-0123456789\n")
    assert refs(pools, "p", p) == ["env:K2"], "files are re-read at most once per second"
    clock.now += 1.1
    back = first(pools, "p", p)
    assert (back.ref, back.value) == ("file:k.key", "new-value-0123456789")
    assert pools.status() == []


def test_removed_until_the_providers_policy_changes(pools: CredentialPools) -> None:
    p = provider("env:K1")
    pools.remove("p", p, first(pools, "p", p), "refused by the upstream (403)")
    same = provider("env:K1")  # an unrelated reload compiles an equal provider anew
    with pytest.raises(AllCoolingDown) as caught:
        refs(pools, "p", same)
    assert caught.value.retry_after_s is None
    assert "refused by the upstream (403)" in (pools.usable("p", same) or "")
    changed = provider("env:K1", cooldown_s=30)
    assert refs(pools, "p", changed) == ["env:K1"]


def test_unresolvable_references_are_skipped_and_reported(pools: CredentialPools) -> None:
    p = provider("env:UNSET", "file:missing.key")
    with pytest.raises(AllCoolingDown):
        refs(pools, "p", p)
    why = pools.usable("p", p)
    assert why is not None and "set the environment variable UNSET" in why
    states = {e["credential"]: e["state"] for e in pools.status()}
    assert states == {"env:UNSET": "unavailable", "file:missing.key": "unavailable"}


def test_status_names_references_never_values(pools: CredentialPools) -> None:
    p = provider("env:K1", "env:K2")
    pools.cool_down("p", "env:K1", 30, "rate limited by the upstream (429)")
    pools.remove("p", p, Credential("env:K2", SECRETS["K2"], None, hash(SECRETS["K2"])), "401")
    status = pools.status()
    text = json.dumps(status)
    assert all(secret not in text for secret in SECRETS.values())
    by_ref = {e["credential"]: e for e in status}
    assert by_ref["env:K1"]["state"] == "cooling" and by_ref["env:K1"]["cooling_down_s"] == 30
    assert by_ref["env:K2"]["state"] == "removed" and by_ref["env:K2"]["removed"] == "401"


def test_a_token_credential_failure_cools_or_removes(pools: CredentialPools) -> None:
    grant = {"token_url": "http://127.0.0.1:9/token", "client_id": "c", "refresh_token": "env:K1"}
    p = provider({"oauth2": grant}, cooldown_s=12)
    credential = first(pools, "p", p)
    assert isinstance(p.credentials[0], TokenCredential)
    assert credential.ref == "oauth2:env:K1" and credential.token is not None
    pools.token_failed("p", p, credential, TokenError("endpoint down", refused=False))
    with pytest.raises(AllCoolingDown) as caught:
        refs(pools, "p", p)
    assert caught.value.retry_after_s == 12
    pools.token_failed("p", p, credential, TokenError("invalid_grant", refused=True))
    (entry,) = pools.status()
    assert entry["state"] == "removed" and "invalid_grant" in str(entry["reason"])
    assert pools.usable("p", p) is not None


def test_a_token_source_outlives_a_reload_that_keeps_its_credential(
    pools: CredentialPools,
) -> None:
    grant = {"token_url": "http://127.0.0.1:9/token", "client_id": "c", "refresh_token": "env:K1"}
    before = first(pools, "p", provider({"oauth2": grant}))
    after = first(pools, "p", provider({"oauth2": grant}))
    assert before.token is after.token
    moved = first(pools, "p", provider({"oauth2": {**grant, "client_id": "d"}}))
    assert moved.token is not before.token


def test_own_cooldowns_are_announced_and_announced_ones_are_not(pools: CredentialPools) -> None:
    told: list[tuple[str, str, float, str]] = []
    pools.on_cool_down = lambda *cooldown: told.append(cooldown)
    p = provider("env:K1", "env:K2")
    pools.cool_down("openai", "env:K1", 30, "rate limited by the upstream (429)")
    pools.cool_down("openai", "env:K2", 20, "rate limited by the upstream (429)", announce=False)
    assert told == [("openai", "env:K1", 30, "rate limited by the upstream (429)")]
    with pytest.raises(AllCoolingDown):  # the announced-elsewhere cooldown applies here too
        refs(pools, "openai", p)
