"""Small helpers every protocol converter uses: JSON, field checks, images, refusals."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from gateway.errors import BadRequest, UnsupportedFeature
from gateway.translate.canonical import ChatRequest, ImagePart, Part, TextPart
from gateway.translate.policy import EFFORT_BUDGETS as EFFORT_BUDGETS  # re-exported
from gateway.translate.policy import effort_from_budget as effort_from_budget
from gateway.translate.policy import thinking_budget as thinking_budget

PROTOCOL_TITLES = {
    "openai": "OpenAI chat completions",
    "anthropic": "Anthropic messages",
    "gemini": "Gemini",
    "openai_responses": "OpenAI responses",
    "bedrock": "Amazon Bedrock Converse",
}


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def now() -> int:
    return int(time.time())


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def bad(param: str, message: str) -> BadRequest:
    return BadRequest(f"Invalid '{param}': {message}", param=param)


def unsupported(what: str, target: str, hint: str = "") -> UnsupportedFeature:
    title = PROTOCOL_TITLES.get(target, target)
    tail = f" {hint}" if hint else ""
    return UnsupportedFeature(
        f"{what} cannot be translated for a model served over the {title} API.{tail}"
    )


def not_translatable(what: str, hint: str = "") -> UnsupportedFeature:
    """A request feature no other protocol can express (raised while reading it)."""
    tail = f" {hint}" if hint else ""
    return UnsupportedFeature(f"{what} cannot be translated for this model's provider.{tail}")


def refuse_extra(req: ChatRequest, target: str) -> None:
    """Fields the source protocol alone understands (and translate.policy does not name)
    must not vanish on the way."""
    if req.extra and req.source != target:
        names = ", ".join(sorted(req.extra))
        raise unsupported(
            f"The field(s) {names}",
            target,
            "The gateway does not know whether dropping them would change the answer: "
            "remove them or use a route served in the same protocol.",
        )


def as_dict(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(param, "expected an object")
    return value


def as_list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise bad(param, "expected an array")
    return value


def as_str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise bad(param, "expected a string")
    return value


# Optional fields: None when absent or null, else the value if it has the field's JSON type,
# else a 400 naming the field. Readers use these, so the canonical request holds the types
# its annotations say, and no writer meets a list where it expects a string.


def opt_str(body: dict[str, Any], key: str, param: str | None = None) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise bad(param or key, "expected a string")


def opt_bool(body: dict[str, Any], key: str, param: str | None = None) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise bad(param or key, "expected true or false")


def opt_dict(body: dict[str, Any], key: str, param: str | None = None) -> dict[str, Any] | None:
    value = body.get(key)
    return None if value is None else as_dict(value, param or key)


def opt_list(body: dict[str, Any], key: str, param: str | None = None) -> list[Any]:
    """An optional array: [] when absent or null."""
    value = body.get(key)
    return [] if value is None else as_list(value, param or key)


def opt_number(body: dict[str, Any], key: str, param: str | None = None) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(param or key, "expected a number")
    return float(value)


def opt_int(body: dict[str, Any], key: str, param: str | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(param or key, "expected an integer")
    return value


def string_list(value: Any, param: str) -> list[str]:
    """A stop field: a string or an array of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return list(value)
    raise bad(param, "expected a string or an array of strings")


def parse_arguments(arguments: str, call_id: str) -> dict[str, Any]:
    """Tool-call arguments as an object (Anthropic and Gemini want objects, not text)."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise BadRequest(
            f"The arguments of tool call '{call_id}' are not valid JSON; "
            "fix or drop that call in the conversation history.",
            param="messages",
        ) from None
    if not isinstance(value, dict):
        raise BadRequest(
            f"The arguments of tool call '{call_id}' must be a JSON object.", param="messages"
        )
    return value


def loose_arguments(arguments: str) -> dict[str, Any]:
    """A model's tool-call arguments as an object; broken JSON is kept, not dropped."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw_arguments": arguments}
    return value if isinstance(value, dict) else {"_raw_arguments": arguments}


_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def is_base64(value: str) -> bool:
    """Gemini signatures are bytes: only base64 text can travel as one."""
    return len(value) % 4 == 0 and _BASE64.fullmatch(value) is not None


def image_from_url(url: str, param: str, detail: str | None = None) -> ImagePart:
    """An ``image_url`` value: a base64 ``data:`` URL becomes inline data."""
    if url.startswith("data:"):
        header, sep, data = url.partition(",")
        if not sep or not header.endswith(";base64"):
            raise bad(param, "a data: URL must be base64 encoded (data:<type>;base64,...)")
        return ImagePart(media_type=header[5:-7], data=data, detail=detail)
    return ImagePart(url=url, detail=detail)


def image_to_url(part: ImagePart) -> str:
    if part.data is not None:
        return f"data:{part.media_type or 'image/png'};base64,{part.data}"
    return part.url or ""


def joined_text(parts: Sequence[Part]) -> str:
    return "".join(p.text for p in parts if isinstance(p, TextPart))
