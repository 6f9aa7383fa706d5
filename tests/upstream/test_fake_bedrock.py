"""The Bedrock fake (tests/support/fake_bedrock.py) is what botocore expects of Bedrock:
botocore's own client calls Converse and ConverseStream on it, its signatures pass, and a
wrong key, a stale date and throttling are refused as Bedrock refuses them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import botocore.auth
import pytest
from botocore.config import Config
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError
from botocore.session import get_session

from tests.support.fake_bedrock import FakeBedrock, Reply, encode_frame, stream_frames

KEY_ID = "AKIAFAKEKEYFORTESTS0"
SECRET = "fake-secret-for-tests-only"
TEMP_ID = "ASIAFAKETEMPKEYTESTS"
TEMP_SECRET = "fake-temp-secret"
TOKEN = "fake-session-token"
REGION = "us-east-1"
MODEL = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-x-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Hi"}]}]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    server = FakeBedrock({KEY_ID: (SECRET, None), TEMP_ID: (TEMP_SECRET, TOKEN)}, REGION)
    server.start()
    yield server
    for opened in _CLIENTS:
        opened.close()
    server.stop()


_CLIENTS: list[Any] = []


def client(
    fake: FakeBedrock, key: str = KEY_ID, secret: str = SECRET, token: str | None = None
) -> Any:
    opened = get_session().create_client(
        "bedrock-runtime",
        endpoint_url=fake.url,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )
    _CLIENTS.append(opened)
    return opened


def test_converse_through_botocore(fake: FakeBedrock) -> None:
    usage = {
        "inputTokens": 3,
        "outputTokens": 4,
        "totalTokens": 107,
        "cacheReadInputTokens": 80,
        "cacheWriteInputTokens": 20,
    }
    tool = {"toolUseId": "tu_1", "name": "lookup", "input": {"q": "x"}}
    fake.script(Reply(text="Sure.", tool_use=tool, usage=usage))
    answer = client(fake).converse(modelId=MODEL, messages=MESSAGES)
    assert answer["output"]["message"]["content"] == [{"text": "Sure."}, {"toolUse": tool}]
    assert answer["stopReason"] == "tool_use"
    assert answer["usage"] == usage
    assert fake.requests[-1].model == MODEL  # the ARN arrived whole, as one path segment
    assert "%3A" in fake.requests[-1].path and "%2F" in fake.requests[-1].path


def test_converse_stream_through_botocore(fake: FakeBedrock) -> None:
    fake.script(Reply(text="one two three", chunk_size=7))
    answer = client(fake, TEMP_ID, TEMP_SECRET, TOKEN).converse_stream(
        modelId="anthropic.claude-x-v1:0", messages=MESSAGES
    )
    events = list(answer["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    text = "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )
    assert text == "one two three"
    assert events[-1]["metadata"]["usage"]["totalTokens"] == 17


def test_an_exception_inside_the_stream_reaches_botocore(fake: FakeBedrock) -> None:
    fake.script(Reply(stream_exception="throttlingException"))
    answer = client(fake).converse_stream(modelId="m", messages=MESSAGES)
    try:
        with pytest.raises(EventStreamError, match="throttlingException"):
            list(answer["stream"])
    finally:
        answer["stream"].close()  # botocore leaves a failed stream's connection open


def test_throttling_is_a_429_throttling_exception(fake: FakeBedrock) -> None:
    fake.script(Reply(throttle=True))
    with pytest.raises(ClientError) as refused:
        client(fake).converse(modelId="m", messages=MESSAGES)
    error = refused.value.response
    assert error["Error"]["Code"] == "ThrottlingException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429


@pytest.mark.parametrize(
    ("key", "secret", "token", "code"),
    [
        (KEY_ID, "a-wrong-secret", None, "InvalidSignatureException"),
        ("AKIAUNKNOWNKEY000000", SECRET, None, "UnrecognizedClientException"),
        (TEMP_ID, TEMP_SECRET, "a-wrong-token", "UnrecognizedClientException"),
    ],
)
def test_a_wrong_key_is_a_403(
    fake: FakeBedrock, key: str, secret: str, token: str | None, code: str
) -> None:
    with pytest.raises(ClientError) as refused:
        client(fake, key, secret, token).converse(modelId="m", messages=MESSAGES)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert refused.value.response["Error"]["Code"] == code


def test_a_stale_date_is_a_403(fake: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=6)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: stale)
    with pytest.raises(ClientError) as refused:
        client(fake).converse(modelId="m", messages=MESSAGES)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "expired" in fake.refused[-1]


def test_frames_round_trip_through_botocore() -> None:
    frames = stream_frames(Reply(text="a b", tool_use={"toolUseId": "t", "name": "f", "input": {}}))
    buffer = EventStreamBuffer()
    buffer.add_data(b"".join(frames))
    messages = list(buffer)
    assert [m.headers[":event-type"] for m in messages] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "contentBlockStart",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    one = list(_buffered(encode_frame({":message-type": "event", ":event-type": "x"}, b"{}")))
    assert one[0].payload == b"{}"


def _buffered(data: bytes) -> EventStreamBuffer:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return buffer
