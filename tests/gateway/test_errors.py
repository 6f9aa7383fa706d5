"""Each error of the contract, in OpenAI's shape, with the headers every response carries."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Deployment
from tests.support.fake_upstream import Fault
from tests.support.gateway_process import FAKE_UPSTREAM_KEY

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def post(
    d: Deployment, body: object = CHAT, key: str | None = "alice", **kw: object
) -> httpx.Response:
    headers = {"authorization": f"Bearer {d.keys[key]}"} if key else {}
    headers.update(kw.pop("headers", {}))  # type: ignore[arg-type]
    if isinstance(body, bytes):
        return httpx.post(
            d.gateway.url + "/v1/chat/completions", content=body, headers=headers, timeout=30, **kw
        )  # type: ignore[arg-type]
    return httpx.post(
        d.gateway.url + "/v1/chat/completions", json=body, headers=headers, timeout=30, **kw
    )  # type: ignore[arg-type]


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> str:
    assert response.status_code == status, response.text
    err = response.json()["error"]
    assert set(err) >= {"message", "type", "code"}
    if code:
        assert err["code"] == code
    assert response.headers["x-request-id"]
    assert response.headers["x-modelgate-policy"]
    return str(err["message"])


@pytest.mark.parametrize("style", ["bearer", "x-api-key", "x-goog-api-key", "query"])
def test_every_auth_style_is_understood(shared_deployment: Deployment, style: str) -> None:
    secret = shared_deployment.keys["alice"]
    headers, params = {}, {}
    if style == "bearer":
        headers["authorization"] = f"Bearer {secret}"
    elif style == "query":
        params["key"] = secret
    else:
        headers[style] = secret
    ok = httpx.post(
        shared_deployment.gateway.url + "/v1/chat/completions",
        json=CHAT,
        headers=headers,
        params=params,
    )
    assert ok.status_code == 200, ok.text
    bad = httpx.post(
        shared_deployment.gateway.url + "/v1/chat/completions",
        json=CHAT,
        headers={k: v + "x" for k, v in headers.items()},
        params={k: v + "x" for k, v in params.items()},
    )
    assert_openai_error(bad, 401, "invalid_api_key")


def test_missing_key_is_401(shared_deployment: Deployment) -> None:
    message = assert_openai_error(post(shared_deployment, key=None), 401)
    assert "key" in message.lower()


def test_unknown_model_is_404_before_the_allowlist(shared_deployment: Deployment) -> None:
    assert_openai_error(
        post(shared_deployment, {**CHAT, "model": "no-such"}), 404, "model_not_found"
    )


def test_model_outside_the_allowlist_is_403(shared_deployment: Deployment) -> None:
    assert_openai_error(post(shared_deployment, {**CHAT, "model": "secret-model"}), 403)


def test_malformed_json_is_400_and_says_json(shared_deployment: Deployment) -> None:
    message = assert_openai_error(post(shared_deployment, b'{"model": "gpt-4o-mini",'), 400)
    assert "JSON" in message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "gpt-4o-mini", "messages": "hi"}, "messages"),
        ({"model": 5, "messages": []}, "model"),
        ({"model": "gpt-4o-mini"}, "messages"),
        ({**CHAT, "stream": "yes"}, "stream"),
    ],
)
def test_invalid_fields_are_400_naming_the_field(
    shared_deployment: Deployment, body: dict[str, object], field: str
) -> None:
    response = post(shared_deployment, body)
    message = assert_openai_error(response, 400)
    assert field in message
    assert response.json()["error"]["param"] == field
    assert shared_deployment.upstream.requests == []


def test_oversize_body_is_413(shared_deployment: Deployment) -> None:
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * (5 * 1024 * 1024 + 10)}]}
    assert_openai_error(post(shared_deployment, big), 413)


def test_upstream_5xx_after_retries_is_502_without_upstream_details(deployment: Deployment) -> None:
    deployment.upstream.fail_next(Fault(500), Fault(500))
    response = post(deployment)
    message = assert_openai_error(response, 502)
    assert len(deployment.upstream.requests) == 2  # the first try and max_retries: 1
    assert deployment.upstream.url not in response.text and "127.0.0.1" not in response.text
    assert FAKE_UPSTREAM_KEY not in response.text
    assert "gpt-4o-mini" in message


def test_upstream_429_cools_the_only_credential_then_503(deployment: Deployment) -> None:
    deployment.upstream.fail_next(Fault(429, headers={"retry-after": "30"}))
    first = post(deployment)
    assert_openai_error(first, 503)
    assert 25 <= int(first.headers["retry-after"]) <= 30
    second = post(deployment)
    assert_openai_error(second, 503)
    assert len(deployment.upstream.requests) == 1  # cooling: not called again


def test_upstream_client_error_is_passed_back_and_not_retried(
    shared_deployment: Deployment,
) -> None:
    shared_deployment.upstream.fail_next(
        Fault(400, body={"error": {"message": "max_tokens is too large", "type": "invalid"}})
    )
    message = assert_openai_error(post(shared_deployment), 400)
    assert message == "max_tokens is too large"
    assert len(shared_deployment.upstream.requests) == 1


def test_unknown_path_is_404_in_openai_shape(shared_deployment: Deployment) -> None:
    response = httpx.get(shared_deployment.gateway.url + "/v1/nothing-here")
    assert_openai_error(response, 404)
