"""Token usage as billing counts it, and finding it in a large answer without parsing it.

Each protocol's adapter reads it (gateway.protocols: ProtocolAdapter.read_usage)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens read from a cache (included in prompt_tokens)."""
    cache_write_tokens: int = 0
    """Prompt tokens written to a cache (included in prompt_tokens)."""
    reasoning_tokens: int = 0
    """Reasoning tokens (included in completion_tokens)."""

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


LARGE_ANSWER = 64 * 1024
"""Whole-body answers above this size are searched for their usage instead of parsed whole
(an embeddings answer of 100 vectors is 3 MB: orjson takes 13 ms over it)."""
_AFTER_KEY = re.compile(rb"\s*:\s*\{")
_MAX_USAGE_BYTES = 4096


def usage_by_search(name: str, content: bytes) -> dict[str, Any] | None:
    """The top-level usage (under the key `name`, the adapter's usage_key) of a whole-body
    answer without parsing all of it, as read_usage takes it: `{name: object}`, `{}` when
    the answer names no usage at all, or None when the search cannot tell (parse it instead).

    The last `"usage":` key is the answer's own: inside JSON strings quotes are escaped, and
    every protocol puts usage after the content it counts.
    """
    key = f'"{name}"'.encode()
    at = content.rfind(key)
    if at < 0:
        return {}
    brace = _AFTER_KEY.match(content, at + len(key))
    if brace is None:
        return None
    start = end = brace.end() - 1
    for _ in range(8):  # one more closing brace per nested object in the usage
        end = content.find(b"}", end + 1)
        if end < 0 or end - start > _MAX_USAGE_BYTES:
            return None
        try:
            return {name: orjson.loads(content[start : end + 1])}
        except orjson.JSONDecodeError:
            continue
    return None
