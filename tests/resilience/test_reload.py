"""Cooldowns, removals and round-robin positions outlive a policy reload."""

from __future__ import annotations

from tests.resilience.conftest import Rig
from tests.support.fake_upstream import Fault


def test_state_survives_an_unrelated_commit_and_a_provider_change_frees_a_removal(
    r: Rig,
) -> None:
    r.upstream.fail_next(Fault(429, headers={"retry-after": "30"}), Fault(401))
    assert r.chat("r-reload").status_code == 503  # cooling for 30 s
    assert r.chat("r-reload-refuse").status_code == 502  # its only credential taken out
    assert r.chat("r-rr-reload").status_code == 200  # round-robin: "a" served, "b" is next
    r.routes["r-new"] = ["rr/new"]  # an unrelated change
    r.commit_and_wait("add a route")
    before = len(r.upstream.requests)

    cooling = r.chat("r-reload")
    assert cooling.status_code == 503
    assert 27 <= int(cooling.headers["retry-after"]) <= 30
    assert r.chat("r-reload-refuse").status_code == 502
    assert r.chat("r-rr-reload").status_code == 200
    assert len(r.upstream.requests) == before + 1
    assert r.upstream_models()[-1] == "b"

    # Changing the refused credential's provider in the policy gives it another chance.
    r.provider_table["reload-refuse"] = {**r.provider_table["reload-refuse"], "cooldown_s": 7}
    r.commit_and_wait("tune the provider")
    assert r.chat("r-reload-refuse").status_code == 200
    assert r.chat("r-reload").status_code == 503, "a provider change elsewhere keeps cooling"
