"""The plan's replay equals the gateway's limiter on the same trace.

The same requests go (a) through `PolicyReplay`, as `policy plan` runs them, and (b) through
the limiter `modelgate serve` builds (`create_limiter`, usage store attached), driven the way
the pipeline drives it: `await admit(principal.scopes, estimate)` at arrival, `await settle`
at the end, with a clock set to each event's time. Every request's outcome must agree.
"""

from __future__ import annotations

import heapq
import random
from pathlib import Path

from gateway.errors import RateLimited
from gateway.limits.base import Admission
from gateway.limits.factory import create_limiter
from gateway.plan.refusals import Refusal, limit_refusal
from gateway.plan.replay import PolicyReplay
from gateway.plan.trace import TraceRow
from gateway.usage.tokens import Usage
from policies.loader import load_policy
from policies.snapshot import Snapshot
from tests.plan.fixture import T
from tests.support.fake_clock import FakeClock

POLICY = {
    "providers.yaml": b"providers:\n  openai: {type: openai, "
    b"base_url: 'https://api.openai.com/v1', credentials: []}\n",
    "routes.yaml": b"routes:\n  gpt: {targets: [openai/gpt-4o-mini]}\n",
    "prices.yaml": b'prices:\n  "openai/*": {input: 2, output: 4}\n',
    "limits.yaml": b"default: {rpm: 6}\ntiers:\n  t: {tpm: 3000, max_concurrency: 2}\n",
    "teams.yaml": b"teams:\n  a: {limits: {rpm: 10, usd_per_day: 0.2}}\n"
    b"  b: {parent: a, limits: {tokens_per_day: 15000, max_concurrency: 3}}\n  c: {}\n",
    "keys.yaml": b"""keys:
  - {id: k1, hash: "sha256:%s", team: a}
  - {id: k2, hash: "sha256:%s", team: b, tier: t}
  - {id: k3, hash: "sha256:%s", team: b}
  - {id: k4, hash: "sha256:%s", team: c, limits: {tokens_per_month: 30000}}
  - {id: k5, hash: "sha256:%s", tier: t}
"""
    % tuple(f"{i:064x}".encode() for i in range(1, 6)),
}


SHADOW_POLICY = {
    **POLICY,
    "limits.yaml": b"default: {rpm: 6, shadow: {rpm: 3, tpm: 2000}}\n"
    b"tiers:\n  t: {enforce: shadow, tpm: 3000, max_concurrency: 2}\n",
    "teams.yaml": POLICY["teams.yaml"].replace(
        b"usd_per_day: 0.2}", b"shadow: {usd_per_day: 0.2}}"
    ),
}
"""The same limits, some in shadow: the would-be refusals must agree too."""


def snapshot(policy: dict[str, bytes] = POLICY) -> Snapshot:
    return Snapshot.compile(load_policy(policy), "e" * 40)


def random_trace(count: int, seed: int) -> list[TraceRow]:
    rng = random.Random(seed)
    ts, rows = T, []
    for _ in range(count):
        ts += rng.expovariate(2.0) if rng.random() < 0.9 else rng.uniform(30, 4000)
        key = f"k{rng.randrange(1, 6)}"
        prompt, completion = rng.randrange(0, 1500), rng.randrange(0, 800)
        latency = rng.choice((50.0, 400.0, 3000.0, 30_000.0))
        target = "openai/gpt-4o-mini"
        rows.append(
            TraceRow(
                ts, latency, key, None, "gpt", "openai", target, 200, None, prompt, completion, None
            )
        )
    return rows


Outcome = tuple[Refusal | None, tuple[tuple[str, str], ...]]
"""A request's refusal (None: admitted) and the shadow limits it exceeded."""


def through_plan(rows: list[TraceRow], policy: dict[str, bytes] = POLICY) -> list[Outcome]:
    replay = PolicyReplay(snapshot(policy))
    outcomes = [replay.step(row) for row in rows]
    replay.finish()
    return [(refused, shadow) for refused, _, shadow in outcomes]


async def through_the_gateways_limiter(
    rows: list[TraceRow], state: Path, policy_files: dict[str, bytes] = POLICY
) -> list[Outcome]:
    policy = snapshot(policy_files)
    principals = {p.key_id: p for p in policy.principals_by_hash.values()}
    clock = FakeClock.__new__(FakeClock)
    clock.now = 0.0
    limiter = create_limiter(None, state, "fail-open", clock=clock)
    await limiter.start()
    ending: list[tuple[float, int, Admission, int, int | None]] = []
    outcomes: list[Outcome] = []
    try:
        for i, row in enumerate(rows):
            while ending and ending[0][0] <= row.ts:
                clock.now, _, admission, tokens, cost = heapq.heappop(ending)
                await limiter.settle(admission, tokens, cost)
            clock.now = row.ts
            assert row.key_id is not None and row.model is not None
            principal = principals[row.key_id]
            try:
                admission = await limiter.admit(principal.scopes, row.prompt_tokens)
            except RateLimited as err:
                outcomes.append((limit_refusal(err), ()))
                continue
            outcomes.append((None, admission.shadow))
            route = policy.resolve(row.model)
            assert route is not None and route.targets[0].price is not None
            cost = route.targets[0].price.cost_micros(
                Usage(row.prompt_tokens, row.completion_tokens)
            )
            end = row.ts + row.latency_ms / 1000
            heapq.heappush(
                ending, (end, i, admission, row.prompt_tokens + row.completion_tokens, cost)
            )
    finally:
        await limiter.close()
    return outcomes


async def test_the_plan_equals_the_live_limiter(tmp_path: Path) -> None:
    rows = random_trace(4000, seed=17)
    planned = through_plan(rows)
    live = await through_the_gateways_limiter(rows, tmp_path / "state")
    assert planned == live
    refused = {why.reason for why, _ in live if why is not None}
    # The trace meets every kind of limit, so the comparison covers each.
    kinds = {"rpm", "tpm", "max_concurrency", "tokens_per_day", "tokens_per_month", "usd_per_day"}
    assert refused >= kinds
    assert 0.05 < sum(why is not None for why, _ in live) / len(live) < 0.8


async def test_the_plans_shadow_refusals_equal_the_live_limiters(tmp_path: Path) -> None:
    rows = random_trace(4000, seed=23)
    planned = through_plan(rows, SHADOW_POLICY)
    live = await through_the_gateways_limiter(rows, tmp_path / "state", SHADOW_POLICY)
    assert planned == live
    shadowed = {limit for _, hits in live for _, limit in hits}
    assert shadowed >= {"rpm", "tpm", "max_concurrency", "usd_per_day"}
