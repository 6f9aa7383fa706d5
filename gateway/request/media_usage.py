"""The tokens of a media answer (moderations, images, audio, rerank): as reported, else an
estimate, never nothing.

Media answers are relayed as they arrive, never held whole; a text answer (JSON or SSE)
keeps its first and last bytes (`AnswerWindow`), where its usage is: OpenAI puts it last
(images, transcriptions, the final event of a stream), rerank servers (vLLM, Jina) first.
The figures are read by the OpenAI adapter, as for chat; a rerank answer's lone
`total_tokens` counts as input.

Unreported usage (moderations, dall-e images, whisper's `duration` usage, speech) is
estimated so quotas count it, from what the gateway saw:
- input: the JSON request's size / 4, as admission reserved (a multipart upload's input is
  audio or images: none is estimated for it);
- output: per image, the output tokens OpenAI bills a medium 1024x1024 gpt-image-1 image;
  a transcript's text / 4; nothing for a moderation verdict, a ranking or speech.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.protocols.openai import OPENAI
from gateway.usage.tokens import Usage, usage_by_search
from gateway.vocabulary import Op

WINDOW_BYTES = 64 * 1024
TOKENS_PER_IMAGE = 1056
"""OpenAI's output tokens of one medium-quality 1024x1024 gpt-image-1 image."""
_TEXT_ANSWERS = (Op.AUDIO_TRANSCRIPTIONS, Op.AUDIO_TRANSLATIONS)
_IMAGE_ANSWERS = (Op.IMAGES, Op.IMAGE_EDITS)


class AnswerWindow:
    """The first and last WINDOW_BYTES of a text answer, and its size."""

    __slots__ = ("head", "size", "tail")

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        room = WINDOW_BYTES - len(self.head)
        if room > 0:
            self.head += chunk[:room]
        self.tail += chunk[-WINDOW_BYTES:]
        if len(self.tail) > WINDOW_BYTES:
            del self.tail[: len(self.tail) - WINDOW_BYTES]

    def reported(self) -> dict[str, Any] | None:
        """The answer's `usage` object, when it reported one."""
        if self.size <= WINDOW_BYTES:
            try:
                whole = orjson.loads(self.head)
            except orjson.JSONDecodeError:
                whole = None  # SSE, or plain text: searched below
            if isinstance(whole, dict):
                found = whole.get("usage")
                return found if isinstance(found, dict) else None
        for part in (self.tail, self.head):
            searched = usage_by_search("usage", bytes(part))
            if searched:
                found = searched.get("usage")
                if isinstance(found, dict):
                    return found
        return None


def count_answer(
    op: Op,
    usage: Usage,
    window: AnswerWindow | None,
    request: dict[str, Any] | None,
    request_bytes: int,
) -> None:
    """Fill `usage` for a finished (or cut short) media answer.

    `request`: the JSON request's body (None for an upload); `request_bytes`: its size."""
    reported = window.reported() if window is not None else None
    if reported is not None:
        OPENAI.read_usage({"usage": reported}, usage)
        if usage.total == 0:
            total = reported.get("total_tokens")
            if isinstance(total, int) and not isinstance(total, bool) and total > 0:
                usage.prompt_tokens = total  # rerank: input tokens only
    if usage.total > 0:
        return
    usage.prompt_tokens = request_bytes // 4 if request is not None else 0
    if op in _IMAGE_ANSWERS:
        usage.completion_tokens = TOKENS_PER_IMAGE * _images_asked(request)
    elif op in _TEXT_ANSWERS and window is not None:
        usage.completion_tokens = window.size // 4
    if usage.total == 0:
        usage.prompt_tokens = 1  # never nothing: every call counts


def _images_asked(request: dict[str, Any] | None) -> int:
    n = request.get("n") if request is not None else None
    return n if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 10 else 1
