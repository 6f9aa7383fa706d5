"""`policy plan` at scale: replay a synthetic week of 1,000,000 request-log rows.

    ./dev python bench/plan_replay.py                 # 1,000,000 rows (target: < 10 s CPU)
    ./dev python bench/plan_replay.py --rows 100000
    ./dev python bench/plan_replay.py --change tier   # only one tier changes

The log is written to a temporary state dir (300 keys in 6 teams, 4 models, a week long,
bursts included). OLD and NEW differ in every way a plan reports: a tier's rpm and tpm, a
team's budget and quota, a removed route, a narrowed allowlist, a price: every key's answers
may change, so every request is replayed through both. With `--change tier` only the heavy
tier's limits change (60 keys, in teams without limits): the other keys are replayed once
(gateway/plan/groups.py). Reported:
- replay: wall and CPU seconds of `build_plan` reading the log (one core; Python is single
  threaded here), rows per second.
The export of the same rows (and its memory) is measured through HTTP, on a running gateway,
by bench/export_rss.py.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from gateway.plan.compare import build_plan
from gateway.plan.trace import read_log
from gateway.usage.request_log import DEFAULT_FILE, connect
from policies.loader import load_policy
from policies.snapshot import Snapshot

KEYS, TEAMS = 300, 6
MODELS = ("gpt-4o-mini", "claude-sonnet", "embed", "legacy")
START = 1_748_779_200.0  # 2025-06-01T12:00:00Z
WEEK_S = 7 * 86_400

PROVIDERS = b"""
providers:
  openai: {type: openai, base_url: "https://api.openai.com/v1", credentials: []}
  anthropic: {type: anthropic, base_url: "https://api.anthropic.com", credentials: []}
"""
ROUTES_OLD = b"""
routes:
  gpt-4o-mini: {targets: [openai/gpt-4o-mini]}
  claude-sonnet: {targets: [anthropic/claude-sonnet-4-20250514]}
  embed: {targets: [openai/text-embedding-3-small]}
  legacy: {targets: [openai/gpt-3.5-turbo]}
"""
ROUTES_NEW = b"""
routes:
  gpt-4o-mini: {targets: [openai/gpt-4o-mini]}
  claude-sonnet: {targets: [anthropic/claude-sonnet-4-20250514]}
  embed: {targets: [openai/text-embedding-3-small]}
"""
PRICES_OLD = b"""
prices:
  "openai/*": {input: 0.15, output: 0.6}
  "anthropic/*": {input: 3, output: 15}
"""
PRICES_NEW = b"""
prices:
  "openai/*": {input: 0.2, output: 0.8}
  "anthropic/*": {input: 3, output: 15}
"""
LIMITS_OLD = b"default: {rpm: 120}\ntiers:\n  heavy: {rpm: 600, max_concurrency: 20}\n"
LIMITS_NEW = (
    b"default: {rpm: 20, tpm: 20000}\n"
    b"tiers:\n  heavy: {rpm: 300, max_concurrency: 4, tokens_per_day: 2000000}\n"
)
LIMITS_TIER = b"default: {rpm: 120}\ntiers:\n  heavy: {rpm: 300, max_concurrency: 4}\n"
CHANGES = ("every", "tier")


def _teams(new: bool) -> bytes:
    lines = ["teams:"]
    for t in range(TEAMS):
        budget = ", limits: {usd_per_day: 2, tokens_per_month: 40000000}" if new and t < 2 else ""
        lines.append(f"  team{t}: {{owner: t{t}@example.com{budget}}}")
    return ("\n".join(lines) + "\n").encode()


def _keys(new: bool) -> bytes:
    lines = ["keys:"]
    for k in range(KEYS):
        digest = hashlib.sha256(f"bench-key-{k}".encode()).hexdigest()
        lines += [f"  - id: k{k}", f"    hash: sha256:{digest}", f"    team: team{k % TEAMS}"]
        if k % 5 == 0:
            lines.append("    tier: heavy")
        if new and k % 7 == 0:
            lines.append('    models: ["gpt-4o-mini", "embed"]')
    return ("\n".join(lines) + "\n").encode()


def policies(change: str = "every") -> tuple[Snapshot, Snapshot]:
    def files(new: bool) -> dict[str, bytes]:
        if new and change == "tier":
            return {**files(False), "limits.yaml": LIMITS_TIER}
        return {
            "providers.yaml": PROVIDERS,
            "routes.yaml": ROUTES_NEW if new else ROUTES_OLD,
            "prices.yaml": PRICES_NEW if new else PRICES_OLD,
            "limits.yaml": LIMITS_NEW if new else LIMITS_OLD,
            "teams.yaml": _teams(new),
            "keys.yaml": _keys(new),
        }

    return (
        Snapshot.compile(load_policy(files(False)), "0" * 40),
        Snapshot.compile(load_policy(files(True)), "1" * 40),
    )


def synthetic_rows(count: int, seed: int = 7, start: float = START) -> Iterator[tuple[object, ...]]:
    """Request-log rows in arrival order over a week from `start`: steady traffic with a
    burst every few hours."""
    rng = random.Random(seed)
    step = WEEK_S / count
    ts = start
    for i in range(count):
        ts += rng.expovariate(1 / step)
        key = rng.randrange(KEYS) if i % 1000 > 50 else i // 1000 % KEYS  # bursts by one key
        model = MODELS[rng.randrange(4) if rng.random() < 0.3 else 0]
        prompt, completion = rng.randrange(50, 4000), rng.randrange(0, 800)
        provider = "anthropic" if model == "claude-sonnet" else "openai"
        yield (
            ts,
            f"req-{i}",
            f"k{key}",
            model,
            provider,
            None,
            200,
            None,
            rng.uniform(200, 20_000),
            None,
            prompt,
            completion,
            0,
            "openai",
            None,
            f"team{key % TEAMS}",
        )


def write_log(path: Path, count: int, start: float = START) -> None:
    db = connect(path)
    columns = (
        "ts, request_id, key_id, model, provider, target, status, error, latency_ms, ttfb_ms, "
        "prompt_tokens, completion_tokens, stream, protocol, cost_micros, team"
    )
    insert = f"INSERT INTO requests ({columns}) VALUES ({', '.join('?' * 16)})"
    rows = synthetic_rows(count, start=start)
    while batch := [row for _, row in zip(range(50_000), rows, strict=False)]:
        db.execute("BEGIN")
        db.executemany(insert, batch)
        db.execute("COMMIT")
    db.close()


def bench_replay(path: Path, change: str = "every") -> None:
    old, new = policies(change)
    wall, cpu = time.perf_counter(), time.process_time()
    plan = build_plan(old, new, read_log(path, 0.0), "bench", 0.0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"replay: {plan.replayed:,} rows in {wall:.2f} s wall, {cpu:.2f} s CPU "
        f"({plan.replayed / wall:,.0f} rows/s); newly refused {plan.newly_refused:,}, "
        f"newly admitted {plan.newly_admitted:,}, limits hit {len(plan.limits)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--change", choices=CHANGES, default="every", help="what NEW changes (default: every)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / DEFAULT_FILE
        start = time.perf_counter()
        write_log(path, args.rows)
        print(f"log: {args.rows:,} synthetic rows written in {time.perf_counter() - start:.1f} s")
        bench_replay(path, args.change)
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == args.rows


if __name__ == "__main__":
    main()
