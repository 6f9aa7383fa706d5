"""The property-based suite's fake upstream: the lenient upstream of
tests/support/lenient_upstream.py (each request's head recorded byte for byte; a header
smuggled in by a bare LF shows up as the separate header an upstream would see). What it
answers is set per example (`expect`): a valid reply of the path's protocol, an error whose
message holds the fake's own URL, a host name and key-shaped strings (the received credential
among them), or a 200 that no client protocol can read.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from tests.support import fake_replies as replies
from tests.support.lenient_upstream import LenientUpstream, Request, Response

LEAK_HOST = "upstream-internal.corp.example.com"
LEAK_KEY = "sk-proj-Zk3q9WfLeakedUpstreamKey0123456789abcdefXYZ"


class Answer(Enum):
    """What the fake answers to every request of one example."""

    REPLY = "reply"
    """A valid reply of the protocol (a 400 when the body is not one it can answer)."""
    REJECT = "reject"
    """A 4xx blaming the client's request, leaking the upstream's secrets in its message."""
    FAIL = "fail"
    """A 5xx, leaking the same."""
    GARBAGE = "garbage"
    """A 200 whose body is not what the protocol answers."""


REJECT_STATUSES = (400, 404, 409, 413, 422)
"""Client errors that change no credential's state (a 401/403/429 would bench the fake's only
credential for the examples after)."""
FAIL_STATUSES = (500, 502, 503, 504)


class RecordingUpstream(LenientUpstream):
    def __init__(self) -> None:
        super().__init__()
        self.answer_with = Answer.REPLY
        self.status = 400

    @property
    def failing(self) -> bool:
        """What it answers is a failure the gateway may report as 502/503/504."""
        return self.answer_with in (Answer.FAIL, Answer.GARBAGE)

    @property
    def leaks(self) -> tuple[str, ...]:
        """What the fake puts in its error messages that no client may ever read."""
        return (self.url, f"127.0.0.1:{self.port}", LEAK_HOST, LEAK_KEY)

    def expect(self, answer: Answer, status: int = 400) -> None:
        """Forget what was received; answer the next requests so."""
        self.seen.clear()
        self.answer_with, self.status = answer, status

    def answer(self, request: Request) -> Response:
        if self.answer_with in (Answer.REJECT, Answer.FAIL):
            return Response(self.status, "application/json", self._leaky_error(request))
        if self.answer_with is Answer.GARBAGE:
            garbage = b'{"choices": "no", "candidates": 7, "content": 1}'
            return Response(200, "application/json", garbage)
        try:
            reply = replies.reply_for(request.path, json.loads(request.body), 3)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            # What a real upstream does with a body it cannot read: a 400 (leaky, as some are).
            return Response(400, "application/json", self._leaky_error(request))
        if reply.events is not None:
            return Response(200, "text/event-stream", b"".join(reply.events))
        return Response.of_json(reply.body)

    def _leaky_error(self, request: Request) -> bytes:
        path = request.path
        credential = " ".join(
            request.headers.get(name, "")
            for name in ("authorization", "x-api-key", "x-goog-api-key")
        )
        message = (
            f"Request to {self.url}{path} failed at {LEAK_HOST} (127.0.0.1:{self.port}): "
            f"key {LEAK_KEY} is not valid; you sent '{credential.strip()}'."
        )
        error: dict[str, Any]
        if path.startswith("/v1beta/"):
            error = {"error": {"code": self.status, "message": message, "status": "INVALID"}}
        elif path.startswith("/v1/messages"):
            error = {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": message},
            }
        else:
            error = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
        return json.dumps(error).encode()
