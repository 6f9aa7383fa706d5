"""JSON Schema cleaning for Gemini, and back."""

from __future__ import annotations

from gateway.translate.gemini_schema import from_gemini, to_gemini

PYDANTIC_STYLE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "Unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "title": "Unit"},
        "Place": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": ["string", "null"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
    "type": "object",
    "properties": {
        "place": {"$ref": "#/$defs/Place"},
        "unit": {"anyOf": [{"$ref": "#/$defs/Unit"}, {"type": "null"}], "default": None},
        "days": {"type": "integer", "minimum": 1, "examples": [3], "format": "uint32"},
        "kind": {"const": "forecast"},
        "level": {"type": "integer", "enum": [1, 2, 3], "description": "Detail."},
        "site": {"type": "string", "format": "uri"},
        "when": {"type": "string", "format": "date-time"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        "empty": {"type": "object", "properties": {}},
    },
    "required": ["place", "missing"],
    "additionalProperties": False,
}


def test_to_gemini_removes_and_rewrites_what_gemini_rejects() -> None:
    out = to_gemini(PYDANTIC_STYLE)
    assert set(out) == {"type", "properties", "required"}
    assert out["type"] == "OBJECT" and out["required"] == ["place"]
    props = out["properties"]
    assert props["place"] == {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}, "zip": {"type": "STRING", "nullable": True}},
        "required": ["city"],
    }
    assert props["unit"] == {
        "type": "STRING",
        "enum": ["celsius", "fahrenheit"],
        "title": "Unit",
        "nullable": True,
    }
    assert props["days"] == {"type": "INTEGER", "minimum": 1}
    assert props["kind"] == {"type": "STRING", "enum": ["forecast"]}
    assert props["level"] == {"type": "INTEGER", "description": "Detail. Allowed values: 1, 2, 3."}
    assert props["site"] == {"type": "STRING"}
    assert props["when"] == {"type": "STRING", "format": "date-time"}
    assert props["tags"] == {"type": "ARRAY", "items": {"type": "STRING"}, "maxItems": 5}
    assert props["either"] == {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}
    assert props["empty"] == {"type": "OBJECT"}


def test_recursive_refs_stop() -> None:
    schema = {
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
        "$ref": "#/$defs/Node",
    }
    out = to_gemini(schema)
    depth = 0
    while "properties" in out:
        out = out["properties"]["next"]
        depth += 1
    assert 5 < depth < 40


def test_from_gemini_lowercases_and_restores_null() -> None:
    gemini = {
        "type": "OBJECT",
        "properties": {
            "a": {"type": "STRING", "nullable": True},
            "b": {"type": "ARRAY", "items": {"type": "NUMBER"}},
        },
        "propertyOrdering": ["a", "b"],
        "required": ["a"],
    }
    assert from_gemini(gemini) == {
        "type": "object",
        "properties": {
            "a": {"type": ["string", "null"]},
            "b": {"type": "array", "items": {"type": "number"}},
        },
        "required": ["a"],
    }


def test_round_trip_of_a_plain_schema_is_stable() -> None:
    schema = {
        "type": "object",
        "properties": {"q": {"type": "string", "description": "query"}},
        "required": ["q"],
    }
    assert from_gemini(to_gemini(schema)) == schema
