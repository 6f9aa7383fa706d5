"""Moderations, image generation, speech and rerank through a real gateway, with the openai
SDK as the client and a fake upstream that checks the API reference's shapes."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest

from tests.openai_api.conftest import Media
from tests.openai_api.fake_media import SPEECH_CHUNKS


def test_moderations_reach_the_upstream_model_of_the_route(media: Media) -> None:
    result = media.client().moderations.create(
        model="omni-moderation-latest", input=["first text", "second text"]
    )
    assert len(result.results) == 2 and result.results[0].flagged is False
    seen = media.upstream.seen[-1]
    assert seen.path == "/v1/moderations"
    assert seen.json == {
        "model": "omni-moderation-upstream",
        "input": ["first text", "second text"],
    }


def test_images_are_generated_with_the_usage_the_upstream_reports(media: Media) -> None:
    result = media.client().images.generate(model="gpt-image-1", prompt="a red cube", n=2)
    assert result.data is not None and len(result.data) == 2
    assert (result.data[0].b64_json or "").startswith("iVBOR")
    assert media.upstream.seen[-1].json == {
        "model": "gpt-image-upstream",
        "prompt": "a red cube",
        "n": 2,
    }
    assert result.usage is not None and result.usage.output_tokens == 2 * 1056


def test_speech_streams_to_the_client_as_it_arrives(media: Media) -> None:
    upstream = media.upstream
    upstream.speech_release.clear()
    # Released late: a gateway holding the answer whole delivers nothing before then.
    timer = threading.Timer(5, upstream.release_speech)
    timer.start()
    try:
        with media.client().audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="alloy", input="Hello there."
        ) as response:
            assert response.headers["content-type"] == "audio/mpeg"
            chunks = response.iter_bytes()
            first = next(chunks)
            assert not upstream.speech_release.is_set(), "the first bytes waited for the end"
            upstream.release_speech()
            audio = first + b"".join(chunks)
    finally:
        timer.cancel()
    assert audio == b"".join(SPEECH_CHUNKS)
    assert upstream.seen[-1].json == {
        "model": "tts-upstream",
        "voice": "alloy",
        "input": "Hello there.",
    }


def test_rerank_takes_query_and_documents(media: Media) -> None:
    response = httpx.post(
        media.gateway.url + "/v1/rerank",
        headers={"authorization": f"Bearer {media.keys['alice']}"},
        json={"model": "bge-reranker", "query": "capital", "documents": ["Paris", "a cat"]},
    )
    assert response.status_code == 200, response.text
    assert [r["index"] for r in response.json()["results"]] == [0, 1]
    assert media.upstream.seen[-1].json == {
        "model": "rerank-upstream",
        "query": "capital",
        "documents": ["Paris", "a cat"],
    }


def test_a_route_of_another_provider_type_is_a_clear_400(media: Media) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        media.client().moderations.create(model="claude-moderation", input="x")
    assert "only OpenAI-type providers" in caught.value.message
    assert "127.0.0.1" not in caught.value.message


def test_a_route_marked_for_other_operations_is_a_404(media: Media) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        media.client().moderations.create(model="chat-only", input="x")
    assert "does not serve moderations" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        media.client().images.generate(model="whisper-1", prompt="x")


def test_keys_and_model_allowlists_apply(media: Media) -> None:
    with pytest.raises(openai.AuthenticationError):
        media.client("mg-wrong").moderations.create(model="omni-moderation-latest", input="x")
    with pytest.raises(openai.PermissionDeniedError):
        media.client("bob").moderations.create(model="omni-moderation-latest", input="x")
    with media.client("bob").audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="alloy", input="ok"
    ) as allowed:
        media.upstream.release_speech()
        assert allowed.read() == b"".join(SPEECH_CHUNKS)


def test_rpm_limits_apply(media: Media) -> None:
    client = media.client("slow")
    client.moderations.create(model="omni-moderation-latest", input="once")
    with pytest.raises(openai.RateLimitError):
        client.moderations.create(model="omni-moderation-latest", input="twice")


def test_concurrency_limits_hold_while_speech_streams(media: Media) -> None:
    upstream = media.upstream
    upstream.speech_release.clear()
    upstream.speech_first_sent.clear()
    client = media.client("single")
    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="alloy", input="long speech"
    ) as speaking:
        assert upstream.speech_first_sent.wait(5)
        with pytest.raises(openai.RateLimitError):
            client.moderations.create(model="omni-moderation-latest", input="meanwhile")
        upstream.release_speech()
        speaking.read()
    client.moderations.create(model="omni-moderation-latest", input="after")


def test_usage_is_counted_as_reported_else_estimated(media: Media) -> None:
    def tokens() -> int:
        response = httpx.get(
            media.gateway.url + "/admin/api/usage",
            params={"key": "alice"},
            headers={"authorization": f"Bearer {media.keys['admin']}"},
        )
        assert response.status_code == 200, response.text
        (report,) = response.json()["keys"]
        totals = report["since_start"]  # what the recorder saw: the request log's figures
        return int(totals["prompt_tokens"]) + int(totals["completion_tokens"])

    def counted(call: object) -> int:
        before = tokens()
        assert callable(call)
        call()
        deadline = time.monotonic() + 5
        while (after := tokens()) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        return after - before

    client = media.client()
    assert counted(lambda: client.images.generate(model="gpt-image-1", prompt="x")) == 50 + 1056
    rerank = {"model": "bge-reranker", "query": "q", "documents": ["d"]}
    auth = {"authorization": f"Bearer {media.keys['alice']}"}
    post = lambda: httpx.post(media.gateway.url + "/v1/rerank", headers=auth, json=rerank)  # noqa: E731
    assert counted(post) == 42
    # Moderations report no usage: the request's size estimate, never nothing.
    assert (
        counted(lambda: client.moderations.create(model="omni-moderation-latest", input="x" * 400))
        >= 100
    )


def test_speech_cut_short_upstream_is_cut_short_for_the_client(media: Media) -> None:
    media.upstream.break_speech = True
    try:
        with (
            pytest.raises(Exception) as caught,  # the SDK's own httpx: its transport error
            media.client().audio.speech.with_streaming_response.create(
                model="gpt-4o-mini-tts", voice="alloy", input="Hello."
            ) as response,
        ):
            response.read()
    finally:
        media.upstream.break_speech = False
    # Not a complete-looking short answer: the chunked body never ends.
    assert type(caught.value).__name__ == "RemoteProtocolError"
    assert "incomplete chunked read" in str(caught.value)
