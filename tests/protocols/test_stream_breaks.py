"""An upstream that breaks off mid-stream: each SDK raises instead of ending quietly."""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest
from google.genai import errors as genai_errors

from tests.protocols import sdk_calls
from tests.protocols.conftest import CLIENTS, Matrix, route
from tests.support.fake_upstream import Fault

# A mid-stream error arrives after a 200: each SDK has its own class for it.
MID_STREAM_ERRORS: dict[str, type[Exception]] = {
    "openai": openai.APIError,
    "anthropic": anthropic.APIStatusError,
    "gemini": genai_errors.APIError,
}
PAIRS = [(c, p) for c in CLIENTS for p in (c, "openai" if c != "openai" else "gemini")]


@pytest.mark.parametrize(("client", "provider"), PAIRS, ids=[f"{c}-to-{p}" for c, p in PAIRS])
def test_upstream_reset_mid_stream_raises_in_the_sdk(m: Matrix, client: str, provider: str) -> None:
    m.upstream.fail_next(Fault(reset_after_chunks=3))
    with pytest.raises(MID_STREAM_ERRORS[client]) as caught:
        sdk_calls.stream(m, client, route(provider))
    assert "broke off" in str(caught.value)


def test_json_array_stream_ends_with_the_error_as_its_last_element(m: Matrix) -> None:
    m.upstream.fail_next(Fault(reset_after_chunks=3))
    response = httpx.post(
        f"{m.gateway.url}/v1beta/models/{route('gemini')}:streamGenerateContent",
        headers={"x-goog-api-key": m.key},
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        timeout=10,
    )
    chunks = json.loads(response.content)
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks[:-1]] == [
        "Hello",
        " from",
        " the",
    ]
    assert chunks[-1]["error"]["code"] == 502
    assert "broke off" in chunks[-1]["error"]["message"]
