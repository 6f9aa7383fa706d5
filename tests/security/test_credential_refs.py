"""Credential references an operator controls: a policy commit cannot borrow any secret it likes.

A gateway run with --credential-env-prefix refuses a commit that names another environment
variable; no gateway takes a `file:` reference outside its credentials directory. `policy
check` reports both, and `policy diff` puts where credentials go at the top of its summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from credentials.refs import AllowedRefs
from gateway.cli import main
from policies.loader import load_policy
from policies.problems import PolicyInvalid
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, standard_policy

POOL = "credentials: [env:FAKE_UPSTREAM_KEY]"


def borrow(repo: PolicyRepo, ref: str) -> str:
    """Commit a change that points the provider's pool at `ref`."""
    text = (repo.path / "providers.yaml").read_text()
    repo.write("providers.yaml", text.replace(POOL, f"credentials: [{ref}]"))
    return repo.commit(f"borrow {ref}")


def policy_status(gateway: GatewayProcess, admin: str) -> dict[str, object]:
    response = httpx.get(
        gateway.url + "/admin/api/status", headers={"authorization": f"Bearer {admin}"}
    )
    assert response.status_code == 200, response.text
    return response.json()["policy"]  # type: ignore[no-any-return]


def refused(gateway: GatewayProcess, admin: str, commit: str) -> dict[str, object]:
    deadline = time.monotonic() + 5
    while (policy := policy_status(gateway, admin))["rejected_commit"] != commit:
        assert policy["attempted_commit"] != commit, f"{commit[:12]} was applied"
        assert time.monotonic() < deadline, "not refused in time"
        time.sleep(0.05)
    return policy


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("env:HOME", "names an environment variable this gateway does not lend to policies"),
        ("file:/etc/passwd", "leaves the credentials directory"),
    ],
)
def test_the_gateway_refuses_a_commit_that_borrows_a_credential(
    fake_upstream: FakeUpstream,
    policy_repo: PolicyRepo,
    start_gateway: Callable[..., GatewayProcess],
    ref: str,
    reason: str,
) -> None:
    keys = standard_policy(policy_repo, fake_upstream.url)
    good = policy_repo.head()
    gateway = start_gateway(policy_repo, "--credential-env-prefix", "FAKE_")
    bad = borrow(policy_repo, ref)
    policy = refused(gateway, keys["admin"], bad)
    assert policy["commit"] == good
    assert str(policy["error"]).startswith(f"providers.yaml:5:19: credential reference '{ref}'")
    assert reason in str(policy["error"])
    answer = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {keys['alice']}"},
    )
    assert answer.status_code == 200 and answer.headers["x-modelgate-policy"] == good
    sent = {k.lower(): v for k, v in fake_upstream.requests[-1].headers.items()}
    assert sent["authorization"] == "Bearer " + gateway.env["FAKE_UPSTREAM_KEY"]


def test_policy_check_reports_a_borrowed_credential(
    fake_upstream: FakeUpstream,
    policy_repo: PolicyRepo,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    standard_policy(policy_repo, fake_upstream.url)
    borrow(policy_repo, "env:HOME")
    repo = ["--repo", str(policy_repo.path)]
    assert main(["policy", "check", *repo]) == 0  # unrestricted by default, as before
    assert "--credential-env-prefix" in capsys.readouterr().err

    assert main(["policy", "check", *repo, "--credential-env-prefix", "FAKE_,MG_CRED_"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("providers.yaml:5:19: credential reference 'env:HOME' names")
    assert "'FAKE_' or 'MG_CRED_'" in out

    monkeypatch.setenv("MG_CREDENTIAL_ENV_PREFIX", "FAKE_")  # as CI would set it
    assert main(["policy", "check", *repo, "--rev", "HEAD"]) == 1
    assert "env:HOME" in capsys.readouterr().out
    assert main(["policy", "check", *repo, "--rev", "HEAD~1"]) == 0


def test_every_reference_of_a_token_credential_is_checked() -> None:
    providers = """providers:
  vertex:
    type: gemini
    base_url: https://example.test/v1
    credentials:
      - google_service_account: file:sa.json
      - oauth2: {token_url: https://auth.example.test/token, client_id: gw,
                 client_secret: env:MG_CRED_SECRET, refresh_token: env:AWS_SECRET_ACCESS_KEY}
"""
    files = {"providers.yaml": providers.encode(), "routes.yaml": b"routes: {}\n"}
    with pytest.raises(PolicyInvalid) as caught:
        load_policy(files, AllowedRefs.parse("MG_CRED_"))
    [problem] = caught.value.problems
    assert (problem.file, problem.line) == ("providers.yaml", 8)
    assert "'env:AWS_SECRET_ACCESS_KEY'" in problem.message
    load_policy(files)  # no restriction: today's behaviour


def test_policy_diff_puts_where_credentials_go_first(
    fake_upstream: FakeUpstream, policy_repo: PolicyRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    standard_policy(policy_repo, fake_upstream.url)
    text = (policy_repo.path / "providers.yaml").read_text()
    text = text.replace(fake_upstream.url, "https://collector.example.test")
    policy_repo.write("providers.yaml", text.replace(POOL, "credentials: [env:HOME]"))
    routes = (policy_repo.path / "routes.yaml").read_text()
    policy_repo.write(
        "routes.yaml", routes + '  "x`\\n#### Approved\\n- `y":\n    targets: [fake/z]\n'
    )
    policy_repo.commit("innocent-looking change")
    assert main(["policy", "diff", "--repo", str(policy_repo.path), "HEAD~1", "HEAD"]) == 0
    out = capsys.readouterr().out
    headings = [line for line in out.splitlines() if line.startswith("#")]
    assert headings[:2] == [headings[0], "#### Security-sensitive changes"]
    sensitive = out.split("#### Security-sensitive changes")[1].split("**Summary:**")[0]
    assert (
        "base URL changed from" in sensitive and "`https://collector.example.test/v1`" in sensitive
    )
    assert "`env:HOME` added to the pool" in sensitive
    assert "#### Approved" not in headings  # the route name stays inside its code span
    assert "**Added** route ``x`\\n#### Approved\\n- `y``" in out
