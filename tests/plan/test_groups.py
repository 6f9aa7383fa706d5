"""Keys OLD and NEW answer alike are replayed once: which keys, and that the plan is the same
as replaying every key through both revisions."""

from __future__ import annotations

import pytest

from gateway.plan import compare
from gateway.plan.compare import build_plan
from gateway.plan.groups import unchanged_keys
from policies.loader import load_policy
from policies.snapshot import Snapshot
from tests.plan.test_equivalence import POLICY, random_trace


def changed(file: str, old: bytes, new: bytes) -> Snapshot:
    assert old in POLICY[file]
    return Snapshot.compile(load_policy({**POLICY, file: POLICY[file].replace(old, new)}), "f" * 40)


OLD = Snapshot.compile(load_policy(POLICY), "e" * 40)
# k1 in team a, k2 (tier t) and k3 in team b (a's child), k4 in team c, k5 (tier t) alone.
CASES = {
    "a key's own limits": (
        changed("keys.yaml", b"tokens_per_month: 30000", b"tokens_per_month: 20000"),
        {"k1", "k2", "k3", "k5"},
    ),
    "a parent team's limits reach its child team's keys": (
        changed("teams.yaml", b"rpm: 10,", b"rpm: 8,"),
        {"k4", "k5"},
    ),
    "a tier reaches the teams of its keys": (
        changed("limits.yaml", b"tpm: 3000", b"tpm: 2000"),
        {"k4"},
    ),
    "a price changes every key's answer": (
        changed("prices.yaml", b"input: 2", b"input: 3"),
        set(),
    ),
    "a team without limits links no keys": (
        changed("keys.yaml", b"k5, hash", b"k5, team: c, hash"),
        {"k1", "k2", "k3", "k4"},
    ),
    "nothing changed": (
        Snapshot.compile(load_policy(POLICY), "f" * 40),
        {f"k{i}" for i in range(1, 6)},
    ),
}


LIMIT_CHANGES = {
    "a key's own limits",
    "a parent team's limits reach its child team's keys",
    "a tier reaches the teams of its keys",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_unchanged_keys(case: str) -> None:
    new, alike = CASES[case]
    assert unchanged_keys(OLD, new) == alike


@pytest.mark.parametrize("case", sorted(CASES))
def test_replaying_once_gives_the_same_plan(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    new, _ = CASES[case]
    rows = random_trace(3000, seed=5)
    once = build_plan(OLD, new, rows, "trace", 0.0)
    monkeypatch.setattr(compare, "unchanged_keys", lambda old, new: frozenset())
    twice = build_plan(OLD, new, rows, "trace", 0.0)
    assert once == twice
    if case in LIMIT_CHANGES:
        assert once.newly_refused  # the change matters, so a wrong grouping would show
