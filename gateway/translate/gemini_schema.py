"""JSON Schema <-> Gemini's OpenAPI-subset ``Schema`` (tool parameters, response schemas).

Gemini rejects much of JSON Schema. Going there, this module inlines ``$ref``/``$defs``,
turns ``anyOf``/``type`` lists containing ``null`` into ``nullable``, ``const`` into a
one-value ``enum``, merges ``allOf``, drops what Gemini refuses (``$schema``,
``additionalProperties``, ``default``, ``examples``, unsupported ``format``\\s, empty
``properties``) and upper-cases types. Non-string enums become a note in the description
(Gemini only takes string enums). Coming back, types are lower-cased and ``nullable``
becomes a ``null`` member of ``type``.

The schemas come from clients, so the work is bounded (a 400 names the schema otherwise):
- each ``$ref`` target is cleaned once and its result shared wherever it is referenced; a
  ``$ref`` that reaches itself again is refused (Gemini has no recursive schemas);
- nothing is cleaned twice: ``type`` lists, ``anyOf`` and ``allOf`` share their children;
- the cleaned schema nests at most ``MAX_DEPTH`` levels, and one request's cleaned schemas
  take at most ``MAX_SCHEMA_BYTES`` of JSON once shared ``$ref``\\s are written out in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import BadRequest

MAX_DEPTH = 32
"""Levels of nested schemas (properties, items, anyOf) a cleaned schema may have."""
MAX_SCHEMA_BYTES = 2 * 1024 * 1024
"""JSON bytes one request's cleaned schemas may add up to, with every ``$ref`` inlined."""

_KEEP = frozenset(
    {
        "type", "format", "title", "description", "nullable", "enum", "items", "properties",
        "required", "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength",
        "pattern", "anyOf", "propertyOrdering", "minProperties", "maxProperties",
    }
)  # fmt: skip
_NESTED = frozenset({"properties", "items", "anyOf"})
_FORMATS = {
    "string": frozenset({"enum", "date-time"}),
    "integer": frozenset({"int32", "int64"}),
    "number": frozenset({"float", "double"}),
}
_TYPES = ("string", "number", "integer", "boolean", "object", "array")


@dataclass(frozen=True, slots=True)
class _Cleaned:
    schema: dict[str, Any]
    size: int
    """JSON bytes of `schema` written out in full (about)."""
    height: int
    """Levels of nested schemas below this one."""


class SchemaCleaner:
    """Cleans one request's schemas for Gemini; their sizes share one bound."""

    def __init__(self, max_bytes: int = MAX_SCHEMA_BYTES) -> None:
        self._left = max_bytes

    def to_gemini(
        self, schema: dict[str, Any], where: str, param: str | None = None
    ) -> dict[str, Any]:
        """`schema` cleaned; `where` names it in errors ("tool 'get_weather'")."""
        cleaned = _Cleaning(schema, where, param, self._left).clean()
        self._left -= cleaned.size
        return cleaned.schema


def to_gemini(
    schema: dict[str, Any], where: str = "The schema", param: str | None = None
) -> dict[str, Any]:
    return SchemaCleaner().to_gemini(schema, where, param)


class _Cleaning:
    """One schema's cleaning: its `$defs`, the cleaned targets, the refs being expanded."""

    def __init__(self, root: dict[str, Any], where: str, param: str | None, left: int) -> None:
        defs = root.get("$defs") or root.get("definitions") or {}
        self._root = root
        self._defs: dict[str, Any] = defs if isinstance(defs, dict) else {}
        self._where, self._param, self._left = where, param, left
        self._done: dict[int, _Cleaned] = {}
        """Cleaned `$ref` targets by the identity of their (client-sent, live) dict."""
        self._open: set[int] = set()
        """`$ref` targets being cleaned: meeting one again means the schema is recursive."""

    def clean(self) -> _Cleaned:
        return self._node(self._root, 0)

    def _refuse(self, problem: str, fix: str) -> BadRequest:
        return BadRequest(
            f"{self._where} cannot be sent to a Gemini model: {problem} {fix}", param=self._param
        )

    def _node(self, schema: dict[str, Any], depth: int) -> _Cleaned:
        self._check(depth, 0)
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self._with_ref(schema, ref, depth)
        members = schema.get("allOf")
        if isinstance(members, list):
            return self._all_of(schema, members, depth)
        variants = schema.get("anyOf", schema.get("oneOf"))
        if isinstance(variants, list):
            kept = [v for v in variants if not (isinstance(v, dict) and v.get("type") == "null")]
            nullable = len(kept) < len(variants)
            if len(kept) == 1 and isinstance(kept[0], dict):
                rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
                inner = self._overlay(self._node(kept[0], depth), self._node(rest, depth))
                return (
                    self._overlay(inner, _Cleaned({"nullable": True}, 16, 0)) if nullable else inner
                )
            any_of = [self._node(v, depth + 1) for v in kept if isinstance(v, dict)]
            return self._assemble(schema, depth, nullable, any_of)
        return self._assemble(schema, depth, False, None)

    def _with_ref(self, schema: dict[str, Any], ref: str, depth: int) -> _Cleaned:
        target = self._target(ref)
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        if target is None:  # a ref that resolves to nothing constrains nothing
            return self._node(rest, depth)
        key = id(target)
        found = self._done.get(key)
        if found is None:
            if key in self._open:
                raise self._refuse(
                    f"the $ref '{ref[:100]}' is recursive (it leads back to itself), and "
                    "Gemini takes no recursive schemas.",
                    "Write the schema out to a fixed depth without the cycle.",
                )
            self._open.add(key)
            found = self._node(target, depth)
            self._open.discard(key)
            self._done[key] = found
        self._check(depth + found.height, found.size)
        return self._overlay(found, self._node(rest, depth)) if rest else found

    def _target(self, ref: str) -> dict[str, Any] | None:
        found = self._defs.get(ref.rsplit("/", 1)[-1])
        return found if isinstance(found, dict) else None

    def _all_of(self, schema: dict[str, Any], members: list[Any], depth: int) -> _Cleaned:
        """The parent's own keywords win over its members', earlier members over later ones;
        properties and required add up."""
        parts = [self._node({k: v for k, v in schema.items() if k != "allOf"}, depth)]
        parts += [self._node(m, depth) for m in members if isinstance(m, dict)]
        merged: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        # Names may be required in one part and defined in another: the raw lists count too.
        required: dict[str, None] = {}
        for raw in (schema, *members):
            names = raw.get("required") if isinstance(raw, dict) else None
            if isinstance(names, list):
                required.update(dict.fromkeys(n for n in names if isinstance(n, str)))
        for part in parts:
            for key, value in part.schema.items():
                if key == "properties":
                    properties.update(value)
                elif key == "required":
                    required.update(dict.fromkeys(value))
                else:
                    merged.setdefault(key, value)
        if properties:
            merged["properties"] = properties
            names = [r for r in required if r in properties]
            if names:
                merged["required"] = names
        size = sum(p.size for p in parts)
        height = max(p.height for p in parts)
        self._check(depth + height, size)
        return _Cleaned(merged, size, height)

    def _overlay(self, base: _Cleaned, over: _Cleaned) -> _Cleaned:
        """`over`'s keywords replace `base`'s (siblings of a `$ref` or of a sole variant)."""
        if not over.schema:
            return base
        height = max(base.height, over.height)
        return _Cleaned({**base.schema, **over.schema}, base.size + over.size, height)

    def _assemble(
        self, schema: dict[str, Any], depth: int, nullable: bool, any_of: list[_Cleaned] | None
    ) -> _Cleaned:
        children: dict[str, Any] = {}
        size = height = 0
        props = schema.get("properties")
        if isinstance(props, dict) and props:
            cleaned = {
                name: self._node(sub, depth + 1) if isinstance(sub, dict) else _Cleaned(sub, 8, 0)
                for name, sub in props.items()
            }
            children["properties"] = {name: c.schema for name, c in cleaned.items()}
            size += sum(len(name) + 4 + c.size for name, c in cleaned.items())
            height = max(c.height + 1 for c in cleaned.values())
        items = schema.get("items")
        if isinstance(items, list):
            items = items[0] if items else None
        if isinstance(items, dict):
            item = self._node(items, depth + 1)
            children["items"] = item.schema
            size, height = size + item.size, max(height, item.height + 1)
        if any_of is not None:
            children["anyOf"] = [c.schema for c in any_of]
            size += sum(c.size + 1 for c in any_of)
            height = max([height, *(c.height + 1 for c in any_of)])
        kind = schema.get("type")
        if isinstance(kind, list):
            types = [t for t in _TYPES if t in kind]
            nullable = nullable or "null" in kind
            if len(types) > 1:
                # One variant per type; they share the cleaned children.
                variants = [self._own(schema, t, children) for t in types]
                out: dict[str, Any] = {"anyOf": [v for v, _ in variants]}
                if nullable:
                    out["nullable"] = True
                size = sum(own + size for _, own in variants) + 16
                self._check(depth + height + 1, size)
                return _Cleaned(out, size, height + 1)
            kind = types[0] if types else None
        out, own = self._own(schema, kind, children)
        if nullable:
            out["nullable"] = True
        self._check(depth + height, size + own)
        return _Cleaned(out, size + own, height)

    def _own(
        self, schema: dict[str, Any], kind: Any, children: dict[str, Any]
    ) -> tuple[dict[str, Any], int]:
        """The schema's own keywords for one `kind`, with its cleaned children; and the size
        of the keywords."""
        out: dict[str, Any] = {}
        if "const" in schema and "enum" not in schema:
            schema = {**schema, "enum": [schema["const"]]}
        for key, value in schema.items():
            if key not in _KEEP or key in _NESTED or key == "type":
                continue
            if key == "enum" and isinstance(value, list):
                if all(isinstance(v, str) for v in value):
                    out[key] = value
                    kind = kind or "string"
                else:
                    allowed = ", ".join(_short(v) for v in value)
                    note = f"Allowed values: {allowed}."
                    out["description"] = f"{_text(schema.get('description'))} {note}".strip()
            elif key == "format":
                if value in _FORMATS.get(str(kind), ()):
                    out[key] = value
            elif key == "description" and "description" in out:
                continue
            else:
                out[key] = value
        if "enum" in out and kind not in (None, "string"):
            kind = "string"  # Gemini applies enums to strings only
        if "required" in out:
            names = children.get("properties", {})
            wanted = out["required"] if isinstance(out["required"], list) else []
            out["required"] = [r for r in wanted if isinstance(r, str) and r in names]
            if not out["required"]:
                del out["required"]
        if isinstance(kind, str):
            out["type"] = kind.upper()
        own = _json_size(out)
        out.update(children)
        return out, own

    def _check(self, depth: int, size: int) -> None:
        if depth > MAX_DEPTH:
            raise self._refuse(
                f"the schema, with its $refs written out, nests more than {MAX_DEPTH} levels deep.",
                "Flatten it.",
            )
        if size > self._left:
            raise self._refuse(
                f"the request's schemas take more than {MAX_SCHEMA_BYTES // 1024} KiB once "
                "cleaned, with shared $refs written out in full.",
                "Share less through $ref, or send smaller schemas.",
            )


def _json_size(value: Any) -> int:
    try:
        return len(orjson.dumps(value))
    except TypeError:  # nested past orjson's limit: sending it is refused later
        return 1024


def _short(value: Any) -> str:
    """An enum value for a description: JSON (Python's str() recurses without a bound)."""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()[:200]
    except TypeError:
        return "(a value nested too deep)"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def from_gemini(schema: dict[str, Any], param: str = "schema", depth: int = 0) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise BadRequest(
            f"Invalid '{param}': the schema nests more than {MAX_DEPTH} levels deep. Flatten it.",
            param=param,
        )
    out: dict[str, Any] = {}
    nullable = schema.get("nullable") is True
    deeper = depth + 1
    for key, value in schema.items():
        if key in ("nullable", "propertyOrdering"):
            continue
        if key == "type" and isinstance(value, str):
            kind = value.lower()
            out["type"] = [kind, "null"] if nullable else kind
        elif key == "properties" and isinstance(value, dict):
            out[key] = {
                n: from_gemini(s, param, deeper) if isinstance(s, dict) else s
                for n, s in value.items()
            }
        elif key == "items" and isinstance(value, dict):
            out[key] = from_gemini(value, param, deeper)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [from_gemini(v, param, deeper) for v in value if isinstance(v, dict)]
            if nullable:
                out[key].append({"type": "null"})
        else:
            out[key] = value
    return out
