"""A policy change that touches every kind of refusal, and a trace that meets each one.

OLD → NEW: the `legacy` route is removed (404), erin may no longer use `gpt` (403), ivan's key
is removed (401), alice gets rpm 2, bob tpm 1000, team `data` max_concurrency 1, frank
tokens_per_day 1000, team `ml` usd_per_day 0.001 (429s), henry's rpm 1 is lifted (newly
admitted), and OpenAI's price doubles (spend).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from gateway.usage.request_log import DEFAULT_FILE, connect
from tests.support.policy_repo import PolicyRepo

T = 1_748_858_400.0  # 2025-06-02T10:00:00Z
KEY_IDS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "henry", "ivan")
TEAMS = {"alice": "search", "bob": "search", "carol": "data", "grace": "ml"}
PROVIDERS = """
providers:
  openai:
    type: openai
    base_url: https://api.openai.com/v1
    credentials: []
"""
ROUTES_OLD = """
routes:
  gpt: {targets: [openai/gpt-4o-mini]}
  mini: {targets: [openai/gpt-4o-mini]}
  legacy: {targets: [openai/gpt-3.5-turbo]}
"""
ROUTES_NEW = """
routes:
  gpt: {targets: [openai/gpt-4o-mini]}
  mini: {targets: [openai/gpt-4o-mini]}
"""
TEAMS_OLD = "teams:\n  search: {}\n  data: {}\n  ml: {}\n"
TEAMS_NEW = (
    "teams:\n  search: {}\n  data: {limits: {max_concurrency: 1}}\n"
    "  ml: {limits: {usd_per_day: 0.001}}\n"
)
OWN_LIMITS_OLD = {"henry": "{rpm: 1}"}
OWN_LIMITS_NEW = {"alice": "{rpm: 2}", "bob": "{tpm: 1000}", "frank": "{tokens_per_day: 1000}"}
MODELS_OLD = {"erin": '["gpt", "mini"]'}
MODELS_NEW = {"erin": '["mini"]'}


def secret_of(key_id: str) -> str:
    return f"mg-plan-test-{key_id}-0123456789abcdef"  # made up: a test key, never a real one


def _keys(new: bool) -> str:
    lines = ["keys:"]
    for key_id in KEY_IDS:
        if new and key_id == "ivan":
            continue
        digest = hashlib.sha256(secret_of(key_id).encode()).hexdigest()
        lines += [f"  - id: {key_id}", f"    hash: sha256:{digest}"]
        if key_id in TEAMS:
            lines.append(f"    team: {TEAMS[key_id]}")
        limits = (OWN_LIMITS_NEW if new else OWN_LIMITS_OLD).get(key_id)
        if limits:
            lines.append(f"    limits: {limits}")
        models = (MODELS_NEW if new else MODELS_OLD).get(key_id)
        if models:
            lines.append(f"    models: {models}")
    return "\n".join(lines) + "\n"


def write_revision(repo: PolicyRepo, new: bool) -> str:
    repo.write("providers.yaml", PROVIDERS)
    repo.write("routes.yaml", ROUTES_NEW if new else ROUTES_OLD)
    repo.write("teams.yaml", TEAMS_NEW if new else TEAMS_OLD)
    repo.write("limits.yaml", "default: {}\ntiers: {}\n")
    price = "{input: 2, output: 4}" if new else "{input: 1, output: 2}"
    repo.write("prices.yaml", f'prices:\n  "openai/*": {price}\n')
    repo.write("keys.yaml", _keys(new))
    return repo.commit("new limits" if new else "before")


def policy_change(path: Path) -> tuple[PolicyRepo, str, str]:
    """A repository with OLD (tagged `old`) and NEW (tagged `new`)."""
    repo = PolicyRepo(path)
    old = write_revision(repo, new=False)
    repo.git("tag", "old")
    new = write_revision(repo, new=True)
    repo.git("tag", "new")
    return repo, old, new


Row = tuple[float, str | None, str | None, int, str | None, float, int, int]
"""(ts, key_id, model, status, error, latency_ms, prompt_tokens, completion_tokens)"""


def trace() -> list[Row]:
    rows: list[Row] = []
    rows += [(T + s, "alice", "gpt", 200, None, 100, 10, 5) for s in range(4)]  # rpm 2
    rows += [(T + 10 + s, "bob", "gpt", 200, None, 100, 400, 0) for s in range(3)]  # tpm 1000
    rows += [(T + 20, "carol", "gpt", 200, None, 5000, 10, 10)]  # in flight 5 s...
    rows += [(T + 21, "carol", "gpt", 200, None, 100, 10, 10)]  # ...so team data's 2nd waits
    rows += [(T + 30, "dave", "legacy", 200, None, 100, 10, 10)]  # route gone
    rows += [(T + 40, "erin", "gpt", 200, None, 100, 10, 10)]  # model no longer allowed
    rows += [(T + s, "frank", "gpt", 200, None, 100, 600, 0) for s in (50, 120, 200)]  # quota
    rows += [(T + s, "grace", "gpt", 200, None, 100, 500, 0) for s in (300, 400)]  # budget
    rows += [(T + 500, "henry", "gpt", 200, None, 100, 10, 10)]
    rows += [(T + 501, "henry", "gpt", 429, "rate_limited", 1, 0, 0)]  # OLD refused it
    rows += [(T + 600, "ivan", "mini", 200, None, 100, 10, 10)]  # key removed
    rows += [(T + 700, None, None, 401, "auth", 1, 0, 0)]  # never replayed
    rows += [(T + 701, "alice", "gpt", 400, "bad_request", 1, 0, 0)]  # refused before routing
    return rows


def write_log(state_dir: Path, rows: list[Row]) -> Path:
    """The rows as the gateway's request log records them."""
    path = state_dir / DEFAULT_FILE
    db = connect(path)
    columns = (
        "ts, request_id, key_id, team, model, provider, target, status, error, latency_ms, "
        "prompt_tokens, completion_tokens, stream, protocol"
    )
    db.executemany(
        f"INSERT INTO requests ({columns}) VALUES ({', '.join('?' * 14)})",
        [
            (
                ts,
                f"req-{i}",
                key,
                TEAMS.get(key or ""),
                model,
                "openai" if status == 200 else None,
                "openai/gpt-4o-mini" if status == 200 else None,
                status,
                error,
                latency,
                prompt,
                completion,
                0,
                "openai",
            )
            for i, (ts, key, model, status, error, latency, prompt, completion) in enumerate(rows)
        ],
    )
    db.close()
    return path
