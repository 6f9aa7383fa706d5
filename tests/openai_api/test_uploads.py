"""Transcriptions, translations and image edits: multipart uploads streamed through a real
gateway, routed by their `model` field, never held whole."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.openai_api.conftest import Media
from tests.support.gateway_process import GatewayProcess

UPLOAD_BYTES = 40 * 1024 * 1024


def rss_bytes(gateway: GatewayProcess) -> int:
    """The resident memory of the gateway and its worker processes."""
    assert gateway.proc is not None
    pids = [gateway.proc.pid, *_children(gateway.proc.pid)]
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def _children(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            kids = [
                int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()
            ]
        except OSError:
            kids = []
        found += kids
        todo += kids
    return found


class PeakRss:
    """Samples the gateway's resident memory on a thread while a call runs."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self._gateway = gateway
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(5)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, rss_bytes(self._gateway))
            time.sleep(0.01)


def test_a_large_transcription_upload_streams_with_bounded_memory(media: Media) -> None:
    audio = os.urandom(UPLOAD_BYTES)
    client = media.client()
    client.audio.transcriptions.create(model="whisper-1", file=("warm.mp3", b"ID3" * 10))
    baseline = rss_bytes(media.gateway)
    with PeakRss(media.gateway) as rss:
        result = client.audio.transcriptions.create(model="whisper-1", file=("talk.mp3", audio))
    assert result.text == "sha256:" + hashlib.sha256(audio).hexdigest()
    seen = media.upstream.seen[-1]
    assert seen.path == "/v1/audio/transcriptions"
    assert seen.fields["model"] == "whisper-upstream" and seen.order == ["model", "file"]
    assert rss.peak - baseline < UPLOAD_BYTES // 4, f"grew by {rss.peak - baseline} bytes"


def test_translations_are_uploads_too(media: Media) -> None:
    # (the SDK's translations.create is deprecated: the form it would send, by hand)
    response = httpx.post(
        media.gateway.url + "/v1/audio/translations",
        headers={"authorization": f"Bearer {media.keys['alice']}"},
        data={"model": "whisper-1"},
        files={"file": ("a.mp3", b"abc")},
    )
    assert response.status_code == 200, response.text
    assert response.json()["text"] == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    assert media.upstream.seen[-1].path == "/v1/audio/translations"


def test_image_edits_stream_their_images(media: Media) -> None:
    image = b"\x89PNG\r\n\x1a\n" + os.urandom(300_000)
    result = media.client().images.edit(
        model="gpt-image-1", image=("in.png", image, "image/png"), prompt="add a hat"
    )
    assert result.data and result.data[0].b64_json == "iVBOR"
    seen = media.upstream.seen[-1]
    assert seen.fields["model"] == "gpt-image-upstream" and seen.fields["prompt"] == "add a hat"
    assert seen.fields["image"] == hashlib.sha256(image).hexdigest()


def multipart(boundary: str, *parts: tuple[str, bytes, str | None]) -> bytes:
    out = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\ncontent-disposition: {disposition}\r\n\r\n".encode()
        out += value + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def test_the_model_may_come_after_the_file_as_curl_sends_it(media: Media) -> None:
    audio = os.urandom(3 * 1024 * 1024)  # past what the gateway holds in memory first
    body = multipart("XyZ", ("file", audio, "talk.mp3"), ("model", b"whisper-1", None))
    response = httpx.post(
        media.gateway.url + "/v1/audio/transcriptions",
        headers={
            "authorization": f"Bearer {media.keys['alice']}",
            "content-type": "multipart/form-data; boundary=XyZ",
        },
        content=body,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["text"] == "sha256:" + hashlib.sha256(audio).hexdigest()
    seen = media.upstream.seen[-1]
    assert seen.order == ["file", "model"] and seen.fields["model"] == "whisper-upstream"


def test_an_upload_without_a_model_is_a_400(media: Media) -> None:
    body = multipart("b1", ("file", b"abc", "a.mp3"))
    response = httpx.post(
        media.gateway.url + "/v1/audio/transcriptions",
        headers={
            "authorization": f"Bearer {media.keys['alice']}",
            "content-type": "multipart/form-data; boundary=b1",
        },
        content=body,
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "model"


def test_a_json_body_is_not_an_upload(media: Media) -> None:
    response = httpx.post(
        media.gateway.url + "/v1/audio/transcriptions",
        headers={"authorization": f"Bearer {media.keys['alice']}"},
        json={"model": "whisper-1"},
    )
    assert response.status_code == 400 and "multipart/form-data" in response.text


def test_a_refused_key_costs_no_upload(media: Media) -> None:
    with pytest.raises(openai.AuthenticationError):
        media.client("mg-nobody").audio.transcriptions.create(
            model="whisper-1", file=("a.mp3", b"abc")
        )
    upload = multipart("b", ("model", b"whisper-1", None), ("file", b"x" * 1_000_000, "a.mp3"))
    response = httpx.post(
        media.gateway.url + "/v1/audio/transcriptions",
        headers={
            "authorization": "Bearer mg-nobody",
            "content-type": "multipart/form-data; boundary=b",
        },
        content=upload,
    )
    assert response.status_code == 401
    # Answered without reading the upload: the connection is closed, not drained.
    assert response.headers.get("connection") == "close"
    assert all(seen.fields.get("model") != "whisper-1" for seen in media.upstream.seen)


def test_upload_limits_apply(media: Media) -> None:
    client = media.client("slow")
    with pytest.raises(openai.RateLimitError):
        client.audio.transcriptions.create(model="whisper-1", file=("a.mp3", b"a"))
        client.audio.transcriptions.create(model="whisper-1", file=("a.mp3", b"a"))
    with pytest.raises(openai.NotFoundError):
        media.client().audio.transcriptions.create(model="chat-only", file=("a.mp3", b"a"))


def test_an_upstream_refusal_reaches_the_client(media: Media) -> None:
    media.upstream.fail_next_upload = 400
    with pytest.raises(openai.BadRequestError) as caught:
        media.client().images.edit(model="gpt-image-1", image=("in.png", b"png"), prompt="hat")
    assert "upstream trouble" in caught.value.message


def test_an_upload_already_sent_is_not_sent_to_another_target(media: Media) -> None:
    media.upstream.fail_next_upload = 503
    with pytest.raises(openai.APIStatusError) as caught:
        media.client().audio.transcriptions.create(
            model="whisper-failover", file=("a.mp3", os.urandom(2 * 1024 * 1024))
        )
    assert caught.value.status_code == 502
    assert "an upload is not sent twice" in caught.value.message
    assert [s.fields.get("model") for s in media.upstream.seen[-1:]] == ["whisper-first"]
    # Once the failed target's turn is over, the route serves uploads again.
    result = media.client().audio.transcriptions.create(
        model="whisper-failover", file=("a.mp3", b"abc")
    )
    assert result.text == "sha256:" + hashlib.sha256(b"abc").hexdigest()
