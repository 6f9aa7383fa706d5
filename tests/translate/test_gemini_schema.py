"""JSON Schema cleaning for Gemini, and back."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from gateway.errors import BadRequest
from gateway.translate.gemini_schema import (
    MAX_DEPTH,
    MAX_SCHEMA_BYTES,
    SchemaCleaner,
    from_gemini,
    to_gemini,
)
from tests.support.schema_bomb import bomb_defs

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


def _bomb() -> dict[str, Any]:
    """The 324-byte class of schema, its `$ref` in a property."""
    return {"properties": {"p": {"$ref": "#/$defs/a"}}, "$defs": bomb_defs()}


def _timed(schema: dict[str, Any]) -> tuple[BadRequest, float]:
    started = time.perf_counter()
    with pytest.raises(BadRequest) as caught:
        to_gemini(schema, "The parameters of tool 'f'", "tools")
    return caught.value, time.perf_counter() - started


def test_a_recursive_ref_is_refused_at_once() -> None:
    error, took = _timed(_bomb())
    assert len(orjson.dumps(_bomb())) < 400
    assert took < 0.05
    assert "recursive" in error.message and "tool 'f'" in error.message
    assert error.param == "tools" and error.status_code == 400


def test_a_self_reference_is_refused() -> None:
    node = {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}
    error, _ = _timed({"$defs": {"Node": node}, "$ref": "#/$defs/Node"})
    assert "'#/$defs/Node' is recursive" in error.message


def test_a_ref_chain_back_to_itself_is_refused() -> None:
    defs = {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}}
    error, _ = _timed({"$defs": defs, "properties": {"a": {"$ref": "#/$defs/A"}}})
    assert "recursive" in error.message


def _shared_chain(levels: int, fan: int = 2) -> dict[str, Any]:
    """No cycle, but each def uses the next `fan` times: the full schema grows as fan**levels."""
    defs: dict[str, Any] = {
        f"d{i}": {
            "type": "object",
            "properties": {f"p{j}": {"$ref": f"#/$defs/d{i + 1}"} for j in range(fan)},
        }
        for i in range(levels)
    }
    defs[f"d{levels}"] = {"type": "string", "description": "leaf"}
    return {"$defs": defs, "$ref": "#/$defs/d0"}


def test_shared_refs_are_cleaned_once_and_written_out_in_full() -> None:
    out = to_gemini(_shared_chain(3))
    leaf = {"type": "STRING", "description": "leaf"}
    level2 = {"type": "OBJECT", "properties": {"p0": leaf, "p1": leaf}}
    level1 = {"type": "OBJECT", "properties": {"p0": level2, "p1": level2}}
    assert out == {"type": "OBJECT", "properties": {"p0": level1, "p1": level1}}


def test_an_exponential_expansion_is_refused_by_size() -> None:
    error, took = _timed(_shared_chain(30))
    assert took < 0.05
    assert f"{MAX_SCHEMA_BYTES // 1024} KiB" in error.message


def test_a_request_shares_one_size_bound_across_its_schemas() -> None:
    cleaner = SchemaCleaner(max_bytes=20_000)
    one = cleaner.to_gemini(_shared_chain(8), "The parameters of tool 'a'")  # ~13 KB in full
    assert len(orjson.dumps(one)) > 10_000
    with pytest.raises(BadRequest, match="tool 'b'"):
        cleaner.to_gemini(_shared_chain(8), "The parameters of tool 'b'")


def test_type_lists_share_their_children_and_stay_bounded() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(20):
        kinds = ["string", "number", "integer", "boolean", "object", "array", "null"]
        schema = {"type": kinds, "properties": {"a": schema}, "items": schema}
    _, took = _timed(schema)
    assert took < 0.05


def test_depth_is_capped() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(MAX_DEPTH):
        schema = {"type": "array", "items": schema}
    assert to_gemini(schema)["type"] == "ARRAY"
    error, _ = _timed({"type": "array", "items": schema})
    assert f"more than {MAX_DEPTH} levels" in error.message


def test_depth_counts_through_refs() -> None:
    inner: dict[str, Any] = {"type": "string"}
    for _ in range(20):
        inner = {"type": "array", "items": inner}
    outer: dict[str, Any] = {"$ref": "#/$defs/Deep"}
    for _ in range(20):
        outer = {"type": "array", "items": outer}
    error, _ = _timed({"$defs": {"Deep": inner}, **outer})
    assert "levels" in error.message


def test_siblings_of_a_ref_override_it() -> None:
    schema = {
        "$defs": {"Unit": {"type": "string", "enum": ["c", "f"], "description": "unit"}},
        "properties": {"u": {"$ref": "#/$defs/Unit", "description": "the unit"}},
    }
    assert to_gemini(schema)["properties"]["u"] == {
        "type": "STRING",
        "enum": ["c", "f"],
        "description": "the unit",
    }


def test_all_of_merges_members_and_keeps_cross_required() -> None:
    schema = {
        "$defs": {"Base": {"type": "object", "properties": {"id": {"type": "integer"}}}},
        "allOf": [{"$ref": "#/$defs/Base"}],
        "properties": {"name": {"type": "string"}},
        "required": ["id", "name", "ghost"],
    }
    assert to_gemini(schema) == {
        "type": "OBJECT",
        "properties": {"name": {"type": "STRING"}, "id": {"type": "INTEGER"}},
        "required": ["id", "name"],
    }


def test_odd_values_are_refused_or_dropped_never_crash() -> None:
    deep: Any = []
    for _ in range(1000):
        deep = [deep]
    out = to_gemini({"type": "integer", "enum": [1, deep], "required": 5, "properties": {"a": 1}})
    assert out["type"] == "INTEGER" and "Allowed values: 1," in out["description"]


def test_from_gemini_bounds_depth() -> None:
    schema: dict[str, Any] = {"type": "STRING"}
    for _ in range(MAX_DEPTH + 1):
        schema = {"type": "ARRAY", "items": schema}
    with pytest.raises(BadRequest, match="levels deep"):
        from_gemini(schema, "parameters")


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
