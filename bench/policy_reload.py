"""How long a big policy commit takes to load and swap in, and how long it stalls the loop.

Builds a repository with N keys (default 10,000) in a temporary directory, applies it once,
then commits small changes and applies each through PolicyWatcher.check_now while a probe
task sleeps 1 ms at a time on the same loop and records how late it wakes up.

    ./dev python bench/policy_reload.py [--keys 10000] [--runs 5]

Target: load and swap under 300 ms, loop stalled at most 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

from dulwich.objects import Blob, Commit, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

from policies.reload import PolicyHolder, PolicyWatcher

PROVIDERS = b"""providers:
  openai: {type: openai, base_url: "https://api.openai.com/v1", credentials: [env:OPENAI_KEY]}
  local: {type: openai-compatible, base_url: "http://127.0.0.1:11434/v1"}
"""
ROUTES = b"""routes:
  gpt-4o-mini: {targets: [openai/gpt-4o-mini]}
  gpt-4o: {targets: [openai/gpt-4o, local/llama3.2]}
  "llama*": {targets: [local/llama*]}
"""
LIMITS = b"""default: {rpm: 60}
tiers:
  standard: {rpm: 120, tpm: 200000, tokens_per_day: 2000000}
  batch: {rpm: 600, tokens_per_month: 100000000, max_concurrency: 32}
"""


def keys_yaml(count: int, generation: int) -> bytes:
    lines = ["keys:"]
    for i in range(count):
        digest = hashlib.sha256(f"mg-bench-{i}".encode()).hexdigest()
        lines += [
            f"  - id: key-{i:05d}",
            f"    owner: team-{i % 97}@example.com",
            f"    hash: sha256:{digest}",
            f"    tier: {'standard' if i % 3 else 'batch'}",
        ]
        if i % 2:
            lines.append('    models: ["gpt-4o*", "llama*"]')
        if i % 5 == 0:
            lines.append(f"    limits: {{rpm: {100 + (i + generation) % 50}}}")
        if i % 7 == 0:
            lines.append("    expires: 2027-06-30")
    admin = hashlib.sha256(b"mg-bench-admin").hexdigest()
    lines += ["admins:", "  - id: ops", f"    hash: sha256:{admin}"]
    return ("\n".join(lines) + "\n").encode()


def commit_files(repo: Repo, files: dict[str, bytes], message: str) -> str:
    tree = Tree()
    for name, data in files.items():
        blob = Blob.from_string(data)
        repo.object_store.add_object(blob)
        tree.add(name.encode(), 0o100644, blob.id)
    repo.object_store.add_object(tree)
    commit = Commit()
    commit.tree = tree.id
    main = Ref(b"refs/heads/main")
    commit.parents = [repo.refs[main]] if main in repo.refs else []
    commit.author = commit.committer = b"Bench <bench@localhost>"
    commit.commit_time = commit.author_time = int(time.time())
    commit.commit_timezone = commit.author_timezone = 0
    commit.message = message.encode()
    repo.object_store.add_object(commit)
    repo.refs[main] = commit.id
    return commit.id.decode()


async def probe(stop: asyncio.Event, lags: list[tuple[float, float]]) -> None:
    """Sleep 1 ms at a time; record (when, how late) for every wake-up."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        lags.append((now, now - start - 0.001))


async def measure(repo_path: Path, keys: int, runs: int) -> None:
    holder = PolicyHolder()
    watcher = PolicyWatcher(holder, repo_path, "refs/heads/main")
    started = time.perf_counter()
    assert watcher.load_initial(), holder.error
    print(
        f"initial load of {keys} keys (sync, cold): {(time.perf_counter() - started) * 1e3:.0f} ms"
    )

    stop = asyncio.Event()
    lags: list[tuple[float, float]] = []
    prober = asyncio.create_task(probe(stop, lags))
    await asyncio.sleep(0.5)
    idle = max(lag for _, lag in lags)
    print(f"idle loop: max probe lateness {idle * 1e3:.1f} ms")

    loads, during, after = [], [], []
    for run in range(1, runs + 1):
        with Repo(str(repo_path)) as repo:
            files = {
                "providers.yaml": PROVIDERS,
                "routes.yaml": ROUTES,
                "limits.yaml": LIMITS,
                "keys.yaml": keys_yaml(keys, run),
            }
            sha = await asyncio.to_thread(commit_files, repo, files, f"change {run}")
        await asyncio.sleep(0.2)
        lags.clear()
        begin = time.perf_counter()
        changed = await watcher.check_now()
        swapped = time.perf_counter()
        assert changed and holder.applied_commit == sha, holder.error
        await asyncio.sleep(1.0)  # stalls the reload leaves behind (deferred GC) count too
        loads.append(swapped - begin)
        during.append(max((lag for t, lag in lags if t <= swapped), default=0.0))
        after.append(max((lag for t, lag in lags if t > swapped), default=0.0))
        print(
            f"reload {run}: load+swap {loads[-1] * 1e3:.0f} ms, max stall during "
            f"{during[-1] * 1e3:.1f} ms, in the second after {after[-1] * 1e3:.1f} ms"
        )
    stop.set()
    await prober
    print(
        f"\n{keys} keys, {runs} reloads: load+swap median {statistics.median(loads) * 1e3:.0f} "
        f"ms, max {max(loads) * 1e3:.0f} ms; max loop stall {max(during + after) * 1e3:.1f} ms "
        "(target: < 300 ms, < 50 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mg-bench-policy-") as tmp:
        path = Path(tmp) / "policy.git"
        with Repo.init_bare(str(path), mkdir=True) as repo:
            files = {
                "providers.yaml": PROVIDERS,
                "routes.yaml": ROUTES,
                "limits.yaml": LIMITS,
                "keys.yaml": keys_yaml(args.keys, 0),
            }
            commit_files(repo, files, "initial")
        asyncio.run(measure(path, args.keys, args.runs))


if __name__ == "__main__":
    main()
