"""A real HTTP fake of Amazon Bedrock's runtime (Converse, ConverseStream) on 127.0.0.1.

Every request's SigV4 signature is recomputed with botocore from the known secret of its
access key id: a wrong key, secret, session token or body is a 403 in Bedrock's words, and
so is an X-Amz-Date more than five minutes off. Answers are scripted per test (`script`):
text, a tool use, usage with cache tokens, an exception inside the stream, or a 429
ThrottlingException. ConverseStream answers in AWS event-stream frames (`encode_frame`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import struct
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support.loop_thread import ServedApp

SERVICE = "bedrock"
MAX_SKEW = dt.timedelta(minutes=5)
EVENT_STREAM = "application/vnd.amazon.eventstream"
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<signed>[^,]+), ?"
    r"Signature=(?P<sig>[0-9a-f]{64})$"
)
_PATH = re.compile(r"^/model/(?P<model>[^/]+)/(?P<action>converse|converse-stream)$")
THROTTLED = "Too many requests, please wait before trying again."
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)


# ------------------------------------------------------------------ event-stream framing


def encode_header(name: str, value: str) -> bytes:
    """One string header (type 7): name length, name, type, value length, value."""
    raw_name, raw_value = name.encode(), value.encode()
    return (
        bytes([len(raw_name)])
        + raw_name
        + b"\x07"
        + struct.pack(">H", len(raw_value))
        + (raw_value)
    )


def encode_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """A frame: prelude (total and headers lengths), its CRC32, headers, payload, and the
    CRC32 of everything before it."""
    raw_headers = b"".join(encode_header(n, v) for n, v in headers.items())
    prelude = struct.pack(">II", 12 + len(raw_headers) + len(payload) + 4, len(raw_headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(event_type: str, body: dict[str, Any]) -> bytes:
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_frame(headers, json.dumps(body).encode())


def exception_frame(exception_type: str, message: str) -> bytes:
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_frame(headers, json.dumps({"message": message}).encode())


# ------------------------------------------------------------------ SigV4, checked


def signature_problem(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    keys: dict[str, tuple[str, str | None]],
    region: str,
    now: dt.datetime | None = None,
) -> str | None:
    """Why AWS would refuse this request's signature, or None. `keys`: access key id ->
    (secret, session token or None); `headers` with lower-case names, as received."""
    match = _AUTH.match(headers.get("authorization", ""))
    if match is None:
        return "Authorization header requires 'Credential', 'SignedHeaders', 'Signature'."
    if match["key"] not in keys:
        return "The security token included in the request is invalid."
    secret, token = keys[match["key"]]
    if token is not None and headers.get("x-amz-security-token") != token:
        return "The security token included in the request is invalid."
    amz_date = headers.get("x-amz-date", "")
    try:
        when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return "Missing or malformed X-Amz-Date."
    now = now or dt.datetime.now(dt.UTC)
    if abs(now - when) > MAX_SKEW:
        return f"Signature expired: {amz_date} is now earlier than the allowed skew."
    if (match["region"], match["service"], match["date"]) != (region, SERVICE, amz_date[:8]):
        return "Credential should be scoped to a valid region and service."
    signed = match["signed"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return MISMATCH
    request = AWSRequest(
        method=method, url=url, data=body, headers={n: headers.get(n, "") for n in signed}
    )
    request.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(match["key"], secret, token), SERVICE, region)
    if auth.signed_headers(auth.headers_to_sign(request)) != match["signed"]:
        return MISMATCH
    expected = auth.signature(
        auth.string_to_sign(request, auth.canonical_request(request)), request
    )
    return None if expected == match["sig"] else MISMATCH


# ------------------------------------------------------------------ scripted answers


@dataclass
class Reply:
    text: str = "Hello from Bedrock."
    tool_use: dict[str, Any] | None = None
    """{"toolUseId": ..., "name": ..., "input": {...}}: a tool call after the text."""
    usage: dict[str, int] = field(
        default_factory=lambda: {"inputTokens": 12, "outputTokens": 5, "totalTokens": 17}
    )
    stop_reason: str | None = None
    """Default: tool_use with a tool call, else end_turn."""
    throttle: bool = False
    """Answer 429 ThrottlingException instead."""
    stream_exception: str | None = None
    """End the stream with this exception (e.g. throttlingException) after the text."""
    chunk_size: int | None = None
    """Write a stream in pieces of this many bytes (frames split across reads)."""


@dataclass
class Received:
    path: str
    model: str
    stream: bool
    headers: dict[str, str]
    body: dict[str, Any]


class FakeBedrock(ServedApp):
    def __init__(
        self, keys: dict[str, tuple[str, str | None]] | None = None, region: str = "us-east-1"
    ) -> None:
        super().__init__()
        self.keys = keys if keys is not None else {}
        self.region = region
        self.requests: list[Received] = []
        self.refused: list[str] = []
        """Why each refused request was refused (signature, date)."""
        self._replies: deque[Reply] = deque()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    def reset(self) -> None:
        """Forget what was received and what was scripted (a test left nothing behind)."""
        self.requests.clear()
        self.refused.clear()
        self._replies.clear()

    def script(self, *replies: Reply) -> None:
        """The answers of the next requests, in order; then the default Reply()."""
        self._replies.extend(replies)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        url = f"http://{request.host}{request.raw_path}"
        problem = signature_problem(request.method, url, headers, body, self.keys, self.region)
        if problem is not None:
            self.refused.append(problem)
            kind = (
                "InvalidSignatureException"
                if "signature" in problem.lower()
                else ("UnrecognizedClientException")
            )
            return _error(403, kind, problem)
        path = _PATH.match(request.raw_path.partition("?")[0])
        if request.method != "POST" or path is None:
            return _error(404, "UnknownOperationException", "Unknown operation.")
        stream = path["action"] == "converse-stream"
        self.requests.append(
            Received(request.raw_path, unquote(path["model"]), stream, headers, json.loads(body))
        )
        reply = self._replies.popleft() if self._replies else Reply()
        if reply.throttle:
            return _error(429, "ThrottlingException", THROTTLED)
        if not stream:
            return web.json_response(converse_answer(reply))
        response = web.StreamResponse(headers={"content-type": EVENT_STREAM})
        await response.prepare(request)
        data = b"".join(stream_frames(reply))
        size = reply.chunk_size or len(data)
        for start in range(0, len(data), size):
            await response.write(data[start : start + size])
            await asyncio.sleep(0)
        await response.write_eof()
        return response


def _error(status: int, kind: str, message: str) -> web.Response:
    # Bedrock's rest-json errors: the type in x-amzn-ErrorType, the message in the body.
    return web.json_response(
        {"message": message},
        status=status,
        headers={
            "x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"
        },
    )


def _stop_reason(reply: Reply) -> str:
    return reply.stop_reason or ("tool_use" if reply.tool_use else "end_turn")


def converse_answer(reply: Reply) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"text": reply.text}] if reply.text else []
    if reply.tool_use:
        content.append({"toolUse": reply.tool_use})
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": _stop_reason(reply),
        "usage": reply.usage,
        "metrics": {"latencyMs": 42},
    }


def stream_frames(reply: Reply) -> list[bytes]:
    """ConverseStream's events for `reply`: messageStart, the blocks, messageStop, metadata
    (the usage comes last)."""
    frames = [event_frame("messageStart", {"role": "assistant"})]
    index = 0
    if reply.text:
        words = reply.text.split(" ")
        for n, word in enumerate(words):
            piece = word if n == len(words) - 1 else word + " "
            frames.append(
                event_frame("contentBlockDelta", {"delta": {"text": piece}, "contentBlockIndex": 0})
            )
        frames.append(event_frame("contentBlockStop", {"contentBlockIndex": 0}))
        index = 1
    if reply.stream_exception:
        frames.append(exception_frame(reply.stream_exception, THROTTLED))
        return frames
    if reply.tool_use:
        tool = reply.tool_use
        start = {"toolUse": {"toolUseId": tool["toolUseId"], "name": tool["name"]}}
        frames.append(
            event_frame("contentBlockStart", {"start": start, "contentBlockIndex": index})
        )
        delta = {"toolUse": {"input": json.dumps(tool["input"])}}
        frames.append(
            event_frame("contentBlockDelta", {"delta": delta, "contentBlockIndex": index})
        )
        frames.append(event_frame("contentBlockStop", {"contentBlockIndex": index}))
    frames.append(event_frame("messageStop", {"stopReason": _stop_reason(reply)}))
    frames.append(event_frame("metadata", {"usage": reply.usage, "metrics": {"latencyMs": 42}}))
    return frames
