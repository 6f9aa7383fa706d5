"""After a run with real keys, failures included, no secret is in any operations output."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable

import httpx
import openai
import pytest

from tests.conftest import Deployment
from tests.operations.sse import Viewer
from tests.support.fake_upstream import Fault
from tests.support.gateway_process import FAKE_UPSTREAM_KEY

HI = [{"role": "user", "content": "hi"}]


def test_no_secret_in_logs_events_metrics_usage_or_databases(
    ops_deployment: Deployment,
    open_viewer: Callable[..., Viewer],
    sdk: Callable[..., openai.OpenAI],
) -> None:
    d = ops_deployment
    admin = {"authorization": f"Bearer {d.keys['admin']}"}
    viewer = open_viewer()
    alice = sdk()
    alice.chat.completions.create(model="gpt-4o-mini", messages=HI)
    list(alice.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))
    d.upstream.fail_next(Fault(500), Fault(500), Fault(401))
    for _ in range(2):
        with pytest.raises(openai.APIStatusError):
            alice.chat.completions.create(model="gpt-4o-mini", messages=HI)
    for secret in (d.keys["alice"] + "x", d.keys["admin"], d.keys["carol"], d.keys["carol"]):
        with contextlib.suppress(openai.APIStatusError):
            sdk(secret=secret).chat.completions.create(model="gpt-4o-mini", messages=HI)
    httpx.get(d.gateway.url + "/metrics", headers={"authorization": f"Bearer {d.keys['bob']}"})
    frames = viewer.requests(8)
    outputs = {
        "events": json.dumps([f.data for f in frames]),
        "metrics": httpx.get(d.gateway.url + "/metrics", headers=admin).text,
        "usage": httpx.get(d.gateway.url + "/admin/api/usage", headers=admin).text,
        "status": httpx.get(d.gateway.url + "/admin/api/status", headers=admin).text,
    }
    viewer.close()
    d.gateway.stop()
    outputs["log"] = d.gateway.logs()
    assert "modelgate.access" in outputs["log"]
    files = sorted(d.gateway.state_dir.glob("*.sqlite3*"))
    assert {f.name for f in files} >= {"requests.sqlite3", "usage.sqlite3"}
    for f in files:
        outputs[f.name] = f.read_bytes().decode("latin-1")
    assert "alice" in outputs["requests.sqlite3"], "the request log holds the run"
    secrets = [*d.keys.values(), FAKE_UPSTREAM_KEY]
    for secret in secrets:
        digest = hashlib.sha256(secret.encode()).hexdigest()
        for name, text in outputs.items():
            assert secret not in text, f"a secret in {name}"
            assert digest not in text, f"a secret's sha256 in {name}"
            assert digest.upper() not in text, f"a secret's sha256 in {name}"
