"""20 policy commits applied while the gateway serves a steady load: no request fails."""

from __future__ import annotations

import datetime as dt
import statistics
import threading
import time
from collections.abc import Callable

import httpx

from policies.edit import PolicyEditor
from tests.gitops.support import policy_status
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, standard_policy

COMMITS = 20
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


class SteadyLoad(threading.Thread):
    """One client sending chat requests back to back, noting every status and policy."""

    def __init__(self, url: str, secret: str) -> None:
        super().__init__(daemon=True)
        self.url, self.secret = url, secret
        self.stop = threading.Event()
        self.results: list[tuple[int, str]] = []

    def run(self) -> None:
        headers = {"authorization": f"Bearer {self.secret}"}
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                try:
                    response = client.post(
                        self.url + "/v1/chat/completions", json=CHAT, headers=headers
                    )
                    self.results.append(
                        (response.status_code, response.headers.get("x-modelgate-policy", ""))
                    )
                except httpx.HTTPError as exc:
                    self.results.append((0, type(exc).__name__))


def test_commits_under_load(
    fake_upstream: FakeUpstream,
    policy_repo: PolicyRepo,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    keys = standard_policy(policy_repo, fake_upstream.url)
    gateway = start_gateway(policy_repo, "--poll-interval", "0.5")  # the default poll
    load = SteadyLoad(gateway.url, keys["alice"])
    load.start()
    delays: list[float] = []
    commits: list[str] = []
    try:
        time.sleep(0.3)
        for n in range(COMMITS):
            editor = PolicyEditor(policy_repo.path)
            # The key under load changes each time: every request must still be served.
            editor.set_key_fields("alice", limits={"rpm": 100_000 + n})
            commit = editor.commit(f"alice rpm {100_000 + n}").commit
            committed = time.time()
            while (status := policy_status(gateway.url, keys["admin"]))["commit"] != commit:
                assert time.time() - committed < 3.0, "commit not applied within 3 s"
                time.sleep(0.01)
            # The gateway's own clock says when the swap happened (same machine, same clock).
            applied = dt.datetime.fromisoformat(str(status["applied_at"]).replace("Z", "+00:00"))
            delays.append(applied.timestamp() - committed)
            commits.append(commit)
        time.sleep(0.2)
    finally:
        load.stop.set()
        load.join(15)
    statuses = [status for status, _ in load.results]
    failed = [r for r in load.results if r[0] != 200]
    seen = {policy for _, policy in load.results}
    print(
        f"\nreload under load: {len(statuses)} requests, {len(failed)} failed; "
        f"commit-to-applied over {COMMITS} commits (poll 0.5 s): "
        f"median {statistics.median(delays) * 1000:.0f} ms, "
        f"p90 {statistics.quantiles(delays, n=10)[-1] * 1000:.0f} ms, "
        f"max {max(delays) * 1000:.0f} ms, min {min(delays) * 1000:.0f} ms"
    )
    print("delays ms:", [round(d * 1000) for d in delays])
    assert not failed, (failed[:5], gateway.logs()[-3000:])
    assert len(statuses) > COMMITS * 10
    assert max(delays) < 1.0  # every commit applied within a second
    assert len(seen & set(commits)) >= COMMITS // 2  # requests really ran across the swaps
