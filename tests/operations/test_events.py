"""GET /admin/api/events against a real gateway, fake upstream and the openai SDK."""

from __future__ import annotations

import time
from collections.abc import Callable

import anthropic
import httpx
import openai
import pytest

from tests.conftest import Deployment
from tests.operations.sse import Viewer
from tests.support.fake_replies import COMPLETION_TOKENS, PROMPT_TOKENS
from tests.support.fake_upstream import Fault

CONTRACT_FIELDS = {
    "ts",
    "request_id",
    "key_id",
    "model",
    "provider",
    "target",
    "status",
    "latency_ms",
    "ttfb_ms",
    "prompt_tokens",
    "completion_tokens",
    "stream",
}
HI = [{"role": "user", "content": "hi"}]
OpenViewer = Callable[..., Viewer]


Sdk = Callable[..., openai.OpenAI]


def chat(d: Deployment, key: str = "alice") -> None:
    with openai.OpenAI(base_url=d.gateway.url + "/v1", api_key=d.keys[key], max_retries=0) as c:
        c.chat.completions.create(model="gpt-4o-mini", messages=HI)


def test_a_success_is_one_event_with_the_contract_fields(
    ops_deployment: Deployment, open_viewer: OpenViewer, sdk: Sdk
) -> None:
    viewer = open_viewer()
    assert viewer.status == 200
    raw = sdk().chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HI)
    list(sdk().chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))
    plain, streamed = viewer.requests(2)
    data = plain.data
    assert data is not None and set(data) >= CONTRACT_FIELDS
    assert data["request_id"] == raw.headers["x-request-id"]
    assert (data["key_id"], data["model"], data["provider"], data["target"]) == (
        "alice",
        "gpt-4o-mini",
        "fake",
        "fake/upstream-mini",
    )
    assert data["status"] == 200 and data["error"] is None and data["stream"] is False
    assert (data["prompt_tokens"], data["completion_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert 0 < data["ttfb_ms"] <= data["latency_ms"]
    assert streamed.data is not None and streamed.data["stream"] is True
    assert streamed.data["completion_tokens"] == COMPLETION_TOKENS
    assert plain.id is not None and streamed.id == plain.id + 1
    # Another protocol, translated to the same upstream: the same event, its own protocol.
    with anthropic.Anthropic(
        base_url=ops_deployment.gateway.url, api_key=ops_deployment.keys["bob"], max_retries=0
    ) as claude:
        claude.messages.create(model="gpt-4o-mini", max_tokens=16, messages=HI)  # type: ignore[arg-type]
    (translated,) = viewer.requests(1)
    assert translated.data is not None
    assert (translated.data["protocol"], translated.data["key_id"]) == ("anthropic", "bob")
    assert translated.data["status"] == 200 and translated.data["target"] == "fake/upstream-mini"
    assert translated.data["prompt_tokens"] == PROMPT_TOKENS


def test_every_error_class_is_an_event_with_its_status_and_error(
    ops_deployment: Deployment, open_viewer: OpenViewer, sdk: Sdk
) -> None:
    d = ops_deployment
    viewer = open_viewer()
    with pytest.raises(openai.AuthenticationError):
        sdk(secret=d.keys["alice"] + "x").chat.completions.create(model="gpt-4o-mini", messages=HI)
    with pytest.raises(openai.PermissionDeniedError):
        sdk().chat.completions.create(model="secret-model", messages=HI)
    with pytest.raises(openai.NotFoundError):
        sdk().chat.completions.create(model="no-such-model", messages=HI)
    bad = httpx.post(
        d.gateway.url + "/v1/chat/completions",
        content=b'{"model": ',
        headers={"authorization": f"Bearer {d.keys['alice']}"},
    )
    assert bad.status_code == 400
    chat(d, "carol")
    with pytest.raises(openai.RateLimitError):
        chat(d, "carol")
    d.upstream.fail_next(Fault(500), Fault(500))
    with pytest.raises(openai.InternalServerError):
        chat(d)
    seen = [(f.data["status"], f.data["error"], f.data["key_id"]) for f in viewer.requests(7)]  # type: ignore[index]
    assert seen == [
        (401, "auth", None),
        (403, "forbidden", "alice"),
        (404, "not_found", "alice"),
        (400, "bad_request", "alice"),
        (200, None, "carol"),
        (429, "rate_limited", "carol"),
        (502, "upstream", "alice"),
    ]


def test_a_reconnecting_viewer_gets_what_it_missed_by_last_event_id(
    ops_deployment: Deployment, open_viewer: OpenViewer
) -> None:
    d = ops_deployment
    first = open_viewer()
    for _ in range(3):
        chat(d)
    got = first.requests(3)
    first.close()
    for _ in range(2):  # while no viewer is connected
        chat(d)
    again = open_viewer(last_event_id=got[0].id)
    replayed = again.requests(4)
    assert [f.id for f in replayed] == [got[1].id, got[2].id, got[2].id + 1, got[2].id + 2]  # type: ignore[operator]
    assert [f.data["request_id"] for f in replayed[:2]] == [f.data["request_id"] for f in got[1:]]  # type: ignore[index]
    chat(d)
    (live,) = again.requests(1)
    assert live.id == replayed[-1].id + 1  # type: ignore[operator]
    # ?since= does the same; an id this run never gave out replays all it keeps, after a gap
    # event that says some may be missing.
    by_query = httpx.get(
        d.gateway.url + "/admin/api/events",
        params={"since": "not-a-number"},
        headers={"authorization": f"Bearer {d.keys['admin']}"},
    )
    assert by_query.status_code == 400
    old = open_viewer(last_event_id=1)
    gap = old.next()
    assert gap.event == "gap" and gap.data is not None and gap.data["oldest_kept"] == got[0].id
    assert [f.id for f in old.requests(6)] == [f.id for f in (*got, *replayed[2:], live)]


def test_several_viewers_see_the_same_events(
    ops_deployment: Deployment, open_viewer: OpenViewer
) -> None:
    viewers = [open_viewer() for _ in range(3)]
    for _ in range(4):
        chat(ops_deployment)
    ids = [[f.id for f in v.requests(4)] for v in viewers]
    assert ids[0] == ids[1] == ids[2]
    assert len(set(ids[0])) == 4


def test_an_idle_stream_gets_heartbeat_comments(
    ops_deployment: Deployment, open_viewer: OpenViewer
) -> None:
    viewer = open_viewer()
    deadline = time.monotonic() + 5
    while viewer.comments.count("keep-alive") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert viewer.comments.count("keep-alive") >= 2  # the heartbeat is 0.5 s in these tests


def test_shutdown_ends_viewer_streams_at_once(
    ops_deployment: Deployment, open_viewer: OpenViewer
) -> None:
    viewer = open_viewer()
    chat(ops_deployment)
    viewer.requests(1)
    started = time.monotonic()
    ops_deployment.gateway.stop()
    assert time.monotonic() - started < 5, "open streams must not hold up shutdown"
    closed = viewer.next()
    assert closed.event == "closed" and closed.data is not None
    assert closed.data["reason"] == "the gateway is shutting down"
    assert viewer.ended.wait(5)
    log = ops_deployment.gateway.logs()
    assert "Traceback" not in log and "ERROR" not in log, log
