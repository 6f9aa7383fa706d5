"""pydantic validation errors reworded for the people who write policy files.

Each message names the field and says what to write instead. Values are never echoed
(a misplaced secret must not travel into logs), except choices from a fixed list.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from policies.yaml_positions import KEY_MARK

Loc = tuple[str | int, ...]

# Fields whose values have a fixed shape: say what the shape is.
_SHAPES = {
    "hash": "'sha256:' followed by 64 lowercase hex digits: the SHA-256 of the secret, never "
    "the secret itself (`modelgate keys create` writes it for you)",
    "credentials": "a reference, env:NAME or file:NAME, never the secret itself",
    "id": "letters, digits, '.', '_' and '-' only, starting with a letter or digit "
    "(at most 128 characters)",
    "base_url": "an http:// or https:// URL without spaces",
    "targets": "provider/model, e.g. openai/gpt-4o-mini",
    "target": "provider/model, e.g. openai/gpt-4o-mini",
}
_MISSING_HINTS = {
    "hash": "add the key's 'sha256:...' hash (`modelgate keys create` makes a key and its hash)",
    "routes": "add a top-level 'routes:' mapping of model names to their targets",
    "targets": "add 'targets: [provider/model]'",
    "type": "add the provider's 'type:' (openai, anthropic, gemini, azure-openai or "
    "openai-compatible)",
    "base_url": "add the provider's 'base_url:'",
    "id": "add an 'id:' that names it",
}
_UNION_TAGS = {"str", "constrained-str"}


@dataclass(frozen=True)
class Reworded:
    """One validation error, located and worded for users."""

    loc: Loc
    on_key: bool
    message: str


def reword(root: type[BaseModel], error: ErrorDetails, file: str) -> Reworded:
    """The user-facing form of one pydantic error raised by validating `root`."""
    loc, owner = _walk(root, error["loc"])
    kind = error["type"]
    field = _field_name(loc)
    on_key = kind == "extra_forbidden" or (bool(loc) and loc[-1] == KEY_MARK)
    if kind == "extra_forbidden":
        return Reworded(loc, True, _unknown_field(str(loc[-1]), owner))
    if kind == "missing":
        hint = _MISSING_HINTS.get(field, f"add '{field}:'")
        return Reworded(loc[:-1], False, f"missing required field '{field}': {hint}")
    if not loc:
        return Reworded(loc, False, _whole_file(file, root, error))
    return Reworded(loc, on_key, _value_message(kind, field, loc, error))


def collapse_unions(errors: Sequence[ErrorDetails], root: type[BaseModel]) -> list[ErrorDetails]:
    """Keep, per location inside a union (a target string or mapping), the branch that fits.

    pydantic reports every branch of `str | WeightedTarget`; users wrote one of them.
    """
    kept: list[ErrorDetails] = []
    seen_plain: set[Loc] = set()
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "too_short" and _long_enough(error):
            continue  # the entries were there but invalid: their own errors say why
        tag_at = _union_tag_index(root, loc)
        if tag_at is None:
            kept.append(error)
            continue
        base, tag = loc[:tag_at], loc[tag_at]
        wrote_mapping = isinstance(error["input"], dict) or tag_at < len(loc) - 1
        is_plain_branch = tag in _UNION_TAGS
        if is_plain_branch and not wrote_mapping:
            if base not in seen_plain:
                seen_plain.add(base)
                kept.append(error)
        elif not is_plain_branch and wrote_mapping:
            kept.append(error)
    return kept


def _long_enough(error: ErrorDetails) -> bool:
    value, ctx = error["input"], error.get("ctx") or {}
    return isinstance(value, list | tuple) and len(value) >= int(ctx.get("min_length", 1))


def _unknown_field(name: str, owner: type[BaseModel] | None) -> str:
    if name == "<<":
        return "merge keys ('<<') are not supported in policy files: write the fields out"
    if owner is None:
        return f"unknown field '{name}': remove it"
    allowed = list(owner.model_fields)
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown field '{name}'{hint} (allowed: {', '.join(allowed)})"


def _whole_file(file: str, root: type[BaseModel], error: ErrorDetails) -> str:
    fields = ", ".join(f"'{f}:'" for f in root.model_fields)
    got = _yaml_type(error["input"])
    return f"{file} must be a mapping with the top-level fields {fields}, not {got}"


def _value_message(kind: str, field: str, loc: Loc, error: ErrorDetails) -> str:
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    what = f"'{field}'" if field else "this value"
    got = _yaml_type(error["input"])
    if loc[-1] == KEY_MARK:
        return f"names under '{field}' must be text, not {got}: quote the name"
    if isinstance(loc[-1], int) and field in ("targets", "credentials", "models"):
        what = f"each entry of '{field}'"
    if kind == "string_pattern_mismatch":
        return f"{what} must be {_SHAPES.get(field, 'in the documented format')}"
    if kind == "literal_error":
        return f"{what} must be one of {ctx.get('expected', '')}{_echo(error['input'])}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        if field in ("targets", "target"):
            return f"{what} must be {_SHAPES['target']}, or a mapping {{target, weight}}"
        return f"{what} must be a mapping of 'name: value' fields, not {got}"
    if kind in ("tuple_type", "list_type", "iterable_type"):
        return f"{what} must be a list ('- item' lines or [a, b]), not {got}"
    if kind in ("string_type", "string_sub_type"):
        if field in _SHAPES:
            return f"{what} must be {_SHAPES[field]}"
        return f"{what} must be text, not {got}: quote it if it looks like another type"
    if kind.startswith("int_"):
        return f"{what} must be a whole number, not {got}"
    if kind.startswith("float_"):
        return f"{what} must be a number, not {got}"
    if kind.startswith("bool_"):
        return f"{what} must be true or false"
    if kind.startswith(("date_", "datetime_")):
        return f"{what} must be a date written YYYY-MM-DD, e.g. 2027-06-30"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"{what} must be {_bound(kind, ctx)}"
    if kind == "too_short":
        return f"{what} needs at least {ctx.get('min_length', 1)} entry"
    if kind == "value_error":
        return f"{what}: {ctx.get('error', error['msg'])}"
    return f"{what}: {error['msg']}"


def _bound(kind: str, ctx: dict[str, Any]) -> str:
    words = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("greater than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    text, key = words[kind]
    value = ctx.get(key)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{text} {value}"


def _echo(value: object) -> str:
    return f" (got '{value}')" if isinstance(value, str) and len(value) <= 40 else ""


def _yaml_type(value: object) -> str:
    if value is None:
        return "nothing (empty)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return "a date" if hasattr(value, "isoformat") else type(value).__name__


def _field_name(loc: Loc) -> str:
    """The innermost field name, skipping list indexes and mapping names (route names...)."""
    for part in reversed(loc):
        if isinstance(part, str) and part != KEY_MARK:
            return part
    return ""


def _walk(
    root: type[BaseModel], raw_loc: Sequence[str | int]
) -> tuple[Loc, type[BaseModel] | None]:
    """`raw_loc` without union branch tags, and the model that owns its last field."""
    clean: list[str | int] = []
    owner: type[BaseModel] | None = None
    tp: Any = root
    for part in raw_loc:
        tp = _unwrap(tp)
        members = _union_members(tp)
        if members is not None:
            tp = _branch(members, part)
            continue
        clean.append(part)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            owner = tp
            info = tp.model_fields.get(str(part))
            tp = info.annotation if info is not None else None
        elif get_origin(tp) is dict:
            tp = None if part == KEY_MARK else get_args(tp)[1]
        elif get_origin(tp) in (tuple, list):
            tp = get_args(tp)[0]
        else:
            tp = None
    return tuple(clean), owner


def _union_tag_index(root: type[BaseModel], loc: Loc) -> int | None:
    tp: Any = root
    for index, part in enumerate(loc):
        tp = _unwrap(tp)
        members = _union_members(tp)
        if members is not None:
            return index
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            info = tp.model_fields.get(str(part))
            tp = info.annotation if info is not None else None
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) in (tuple, list):
            tp = get_args(tp)[0]
        else:
            return None
    return None


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and `| None` until something with a shape is left."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        members = _raw_union(tp)
        if members is not None:
            present = [m for m in members if m is not type(None)]
            if len(present) == 1:
                tp = present[0]
                continue
        return tp


def _raw_union(tp: Any) -> tuple[Any, ...] | None:
    if isinstance(tp, types.UnionType) or get_origin(tp) is Union:
        return get_args(tp)
    return None


def _union_members(tp: Any) -> tuple[Any, ...] | None:
    members = _raw_union(tp)
    if members is None:
        return None
    present = tuple(m for m in members if m is not type(None))
    return present if len(present) > 1 else None


def _branch(members: tuple[Any, ...], tag: str | int) -> Any:
    for member in members:
        plain = _unwrap(member)
        if isinstance(plain, type) and plain.__name__ == tag:
            return plain
    return next((_unwrap(m) for m in members if _unwrap(m) is str), None)
