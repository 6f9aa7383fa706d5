"""What every protocol's fake answers share: fixed usage, texts, the reply type, SSE framing.

Fixed usage (11 prompt + 7 completion tokens) lets tests check that the gateway counts
exactly what the upstream reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7
TEXT_PIECES = ["Hello", " from", " the", " fake", " upstream", ".", ""]
TOOL_ARGS = '{"city": "Paris"}'
EMBEDDING = [0.25, -0.5, 0.125]
THINKING_PIECES = ["Let me think", " about this."]
THINKING_SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+Sig/Ff=="


@dataclass
class Reply:
    body: dict[str, Any] | None = None
    events: list[bytes] | None = None


def text_of(chunks: int) -> list[str]:
    pieces = [p for p in TEXT_PIECES if p][: max(1, chunks)]
    return pieces


def _sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()
