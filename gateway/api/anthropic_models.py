"""Model lists in Anthropic's shape (`GET /v1/models` from an Anthropic SDK), with its paging.

Anthropic pages with `limit` (default 20, 1 to 1000) and the cursors `after_id` and
`before_id`; the page says `has_more`, `first_id` and `last_id`. The SDK follows the
cursors until `has_more` is false, so they must be honoured or it would loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import BadRequest

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
RELEASED = "1970-01-01T00:00:00Z"
"""created_at of a route: Anthropic's word for "release date unknown" is the epoch."""


def model_info(name: str) -> dict[str, Any]:
    """One route as Anthropic's ModelInfo."""
    return {
        "type": "model",
        "id": name,
        "display_name": name,
        "created_at": RELEASED,
        "lifecycle": "active",
    }


def model_page(names: list[str], args: Mapping[str, Any]) -> dict[str, Any]:
    """The page of `names` the query asks for (`args`: the request's query arguments)."""
    limit = _limit(_arg(args, "limit"))
    after, before = _arg(args, "after_id"), _arg(args, "before_id")
    if after is not None and before is not None:
        raise BadRequest("Give after_id or before_id, not both.", param="before_id")
    if before is not None:
        end = _index(names, before, "before_id")
        start = max(0, end - limit)
        has_more = start > 0
    else:
        start = _index(names, after, "after_id") + 1 if after is not None else 0
        end = min(len(names), start + limit)
        has_more = end < len(names)
    page = names[start:end]
    return {
        "data": [model_info(name) for name in page],
        "has_more": has_more,
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
    }


def _arg(args: Mapping[str, Any], name: str) -> str | None:
    value = args.get(name)  # Sanic's RequestParameters.get gives the first value
    return value if isinstance(value, str) and value else None


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(
            f"limit must be a whole number from 1 to {MAX_LIMIT} (got '{text}').", param="limit"
        )
    return limit


def _index(names: list[str], cursor: str, param: str) -> int:
    try:
        return names.index(cursor)
    except ValueError:
        raise BadRequest(
            f"{param} '{cursor}' is not a model your key may use; list again without it.",
            param=param,
        ) from None
