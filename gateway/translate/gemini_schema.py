"""JSON Schema <-> Gemini's OpenAPI-subset ``Schema`` (tool parameters, response schemas).

Gemini rejects much of JSON Schema. Going there, this module inlines ``$ref``/``$defs``,
turns ``anyOf``/``type`` lists containing ``null`` into ``nullable``, ``const`` into a
one-value ``enum``, merges ``allOf``, drops what Gemini refuses (``$schema``,
``additionalProperties``, ``default``, ``examples``, unsupported ``format``\\s, empty
``properties``) and upper-cases types. Non-string enums become a note in the description
(Gemini only takes string enums). Coming back, types are lower-cased and ``nullable``
becomes a ``null`` member of ``type``.
"""

from __future__ import annotations

from typing import Any

_KEEP = frozenset(
    {
        "type", "format", "title", "description", "nullable", "enum", "items", "properties",
        "required", "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength",
        "pattern", "anyOf", "propertyOrdering", "minProperties", "maxProperties",
    }
)  # fmt: skip
_FORMATS = {
    "string": frozenset({"enum", "date-time"}),
    "integer": frozenset({"int32", "int64"}),
    "number": frozenset({"float", "double"}),
}
_MAX_DEPTH = 32


def to_gemini(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.get("$defs") or schema.get("definitions") or {}
    return _convert(schema, defs, 0)


def _resolve(schema: dict[str, Any], defs: dict[str, Any], depth: int) -> dict[str, Any]:
    ref = schema.get("$ref")
    while isinstance(ref, str) and depth < _MAX_DEPTH:
        name = ref.rsplit("/", 1)[-1]
        target = defs.get(name)
        if not isinstance(target, dict):
            return {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        ref = target.get("$ref")
        depth += 1
    return schema


def _convert(schema: dict[str, Any], defs: dict[str, Any], depth: int) -> dict[str, Any]:
    if depth > _MAX_DEPTH:
        return {"type": "OBJECT"}
    schema = _resolve(schema, defs, depth)
    for group in ("allOf",):
        members = schema.get(group)
        if isinstance(members, list):
            merged = {k: v for k, v in schema.items() if k != group}
            for m in members:
                if isinstance(m, dict):
                    m = _resolve(m, defs, depth)
                    props = {**merged.get("properties", {}), **m.get("properties", {})}
                    required = [*merged.get("required", []), *m.get("required", [])]
                    merged = {**m, **merged, "properties": props, "required": required}
            schema = merged
    out: dict[str, Any] = {}
    variants = schema.get("anyOf", schema.get("oneOf"))
    if isinstance(variants, list):
        kept = [v for v in variants if not (isinstance(v, dict) and v.get("type") == "null")]
        if len(kept) < len(variants):
            out["nullable"] = True
        if len(kept) == 1 and isinstance(kept[0], dict):
            rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            inner = _convert({**_resolve(kept[0], defs, depth), **rest}, defs, depth + 1)
            return {**inner, **out}
        out["anyOf"] = [_convert(v, defs, depth + 1) for v in kept if isinstance(v, dict)]
    kind = schema.get("type")
    if isinstance(kind, list):
        types = [t for t in kind if t != "null"]
        if len(types) < len(kind):
            out["nullable"] = True
        if len(types) > 1:
            rest = {k: v for k, v in schema.items() if k != "type"}
            out["anyOf"] = [_convert({**rest, "type": t}, defs, depth + 1) for t in types]
            return out
        kind = types[0] if types else None
    if "const" in schema and "enum" not in schema:
        schema = {**schema, "enum": [schema["const"]]}
    for key, value in schema.items():
        if key not in _KEEP or key in ("anyOf", "type"):
            continue
        if key == "properties" and isinstance(value, dict):
            if value:
                out[key] = {
                    name: _convert(sub, defs, depth + 1) if isinstance(sub, dict) else sub
                    for name, sub in value.items()
                }
        elif key == "items" and isinstance(value, dict):
            out[key] = _convert(value, defs, depth + 1)
        elif key == "items" and isinstance(value, list) and value:
            out[key] = _convert(value[0], defs, depth + 1)
        elif key == "enum" and isinstance(value, list):
            if all(isinstance(v, str) for v in value):
                out[key] = value
                kind = kind or "string"
            else:
                allowed = ", ".join(str(v) for v in value)
                note = f"Allowed values: {allowed}."
                out["description"] = f"{schema.get('description', '')} {note}".strip()
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
        names = out.get("properties", {})
        out["required"] = [r for r in out["required"] if r in names]
        if not out["required"]:
            del out["required"]
    if isinstance(kind, str):
        out["type"] = kind.upper()
    return out


def from_gemini(schema: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    nullable = schema.get("nullable") is True
    for key, value in schema.items():
        if key in ("nullable", "propertyOrdering"):
            continue
        if key == "type" and isinstance(value, str):
            kind = value.lower()
            out["type"] = [kind, "null"] if nullable else kind
        elif key == "properties" and isinstance(value, dict):
            out[key] = {n: from_gemini(s) if isinstance(s, dict) else s for n, s in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = from_gemini(value)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [from_gemini(v) for v in value if isinstance(v, dict)]
            if nullable:
                out[key].append({"type": "null"})
        else:
            out[key] = value
    return out
