"""GET /v1/models and /v1/models/{id} in Anthropic's shape for the anthropic SDK."""

from __future__ import annotations

import datetime as dt

import anthropic
import httpx
import pytest
from anthropic.types import ModelInfo

from tests.protocols.conftest import Matrix, route

ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


def openai_listed(m: Matrix) -> list[str]:
    """The same key's list in OpenAI's shape (what the Anthropic shape must match)."""
    response = httpx.get(m.gateway.url + "/v1/models", headers={"authorization": f"Bearer {m.key}"})
    assert response.json()["object"] == "list"
    return [model["id"] for model in response.json()["data"]]


def test_the_sdk_lists_the_keys_models_as_model_info(m: Matrix) -> None:
    models = list(m.anthropic().models.list())
    assert [model.id for model in models] == openai_listed(m)
    assert len(models) > 2 and all(isinstance(model, ModelInfo) for model in models)
    first = models[0]
    assert (first.type, first.display_name, first.lifecycle) == ("model", first.id, "active")
    assert first.created_at == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert m.upstream.requests == []


def test_the_sdk_pages_through_the_list(m: Matrix) -> None:
    client = m.anthropic()
    page = client.models.list(limit=2)
    assert [model.id for model in page.data] == openai_listed(m)[:2]
    assert page.has_more and page.first_id == page.data[0].id and page.last_id == page.data[1].id
    assert [model.id for model in page] == openai_listed(m)  # the SDK follows the cursors
    before = client.models.list(limit=1, before_id=page.data[1].id)
    assert [model.id for model in before.data] == [page.data[0].id] and not before.has_more


def test_the_wire_shape_validates_as_the_sdks_types(m: Matrix) -> None:
    raw = httpx.get(
        m.gateway.url + "/v1/models",
        headers={"x-api-key": m.key, **ANTHROPIC_HEADERS},
        params={"limit": 1000},
    ).json()
    assert set(raw) == {"data", "has_more", "first_id", "last_id"}
    assert raw["has_more"] is False and raw["last_id"] == raw["data"][-1]["id"]
    for item in raw["data"]:
        ModelInfo.model_validate(item, strict=False)
        assert item["created_at"].endswith("Z")  # RFC 3339, as Anthropic writes it


def test_the_sdk_retrieves_one_model_and_gets_anthropic_errors(m: Matrix) -> None:
    client = m.anthropic()
    one = client.models.retrieve(route("anthropic"))
    assert isinstance(one, ModelInfo) and one.id == one.display_name == route("anthropic")
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.models.retrieve("no-such-model")
    error = missing.value.response.json()
    assert error["type"] == "error" and error["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError):
        client.models.list(limit=0)
    with pytest.raises(anthropic.BadRequestError, match="after_id"):
        client.models.list(after_id="no-such-model")
    stranger = anthropic.Anthropic(base_url=m.gateway.url, api_key="mg-" + "x" * 40, max_retries=0)
    m.opened.append(stranger)
    with pytest.raises(anthropic.AuthenticationError):
        stranger.models.list()


def test_without_anthropic_version_the_list_stays_openai_shaped(m: Matrix) -> None:
    listed = httpx.get(m.gateway.url + "/v1/models", headers={"x-api-key": m.key}).json()
    assert listed["object"] == "list" and "has_more" not in listed
