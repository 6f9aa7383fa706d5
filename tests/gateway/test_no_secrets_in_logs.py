"""After a run with real keys, failures included, the server's log holds no secret."""

from __future__ import annotations

import hashlib

import httpx

from tests.conftest import Deployment
from tests.support.fake_upstream import Fault
from tests.support.gateway_process import FAKE_UPSTREAM_KEY


def test_no_key_hash_or_credential_in_the_log(deployment: Deployment) -> None:
    url = deployment.gateway.url + "/v1/chat/completions"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    alice = deployment.keys["alice"]
    deployment.upstream.fail_next(Fault(500), Fault(500), Fault(429), Fault(401))
    for secret in (alice, alice, alice + "x", deployment.keys["admin"]):
        httpx.post(url, json=body, headers={"authorization": f"Bearer {secret}"})
    httpx.get(
        deployment.gateway.url + "/admin/api/status", headers={"authorization": f"Bearer {alice}"}
    )
    deployment.gateway.stop()
    log = deployment.gateway.logs()
    assert log, "the gateway wrote a log"
    for secret in (*deployment.keys.values(), FAKE_UPSTREAM_KEY):
        assert secret not in log
        assert hashlib.sha256(secret.encode()).hexdigest() not in log
