"""`modelgate serve --upstream-proxy`: the real server reaching its upstream through a proxy."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import openai

from tests.support.connect_proxy import ProxyThread
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, standard_policy

SERVE = (sys.executable, "-m", "gateway.cli", "serve")


def test_the_gateway_calls_its_upstream_through_the_proxy(
    fake_upstream: FakeUpstream,
    policy_repo: PolicyRepo,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    keys = standard_policy(policy_repo, fake_upstream.url)
    with ProxyThread(password="proxy-pass-123") as proxy:
        # The fake upstream is on 127.0.0.1, normally reached directly: --no-proxy "" for it.
        proxy_url = proxy.url("ops:proxy-pass-123@")
        gateway = start_gateway(policy_repo, "--upstream-proxy", proxy_url, "--no-proxy", "")
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=keys["alice"])
        for _ in range(2):
            answer = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
            assert answer.choices[0].message.content
        assert proxy.tunnels == [fake_upstream.url.removeprefix("http://")]  # one, kept
        gateway.stop()
    assert "proxy-pass-123" not in gateway.logs()


def test_an_unusable_proxy_setting_is_refused_at_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [*SERVE, "--policy-repo", str(tmp_path / "p"), "--state-dir", str(tmp_path / "s"),
         "--upstream-proxy", "https://ops:hunter2@proxy:3128"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--upstream-proxy" in done.stderr and "http://" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    assert not (tmp_path / "p").exists()  # refused before anything was created
