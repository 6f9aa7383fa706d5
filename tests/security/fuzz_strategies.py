"""Hypothesis strategies for hostile request bodies and headers.

Arbitrary JSON rarely gets past the first field check, so each endpoint also has a
structure-aware strategy (fuzz_shapes.py), built from the primitives here: a body of the right
shape in which any value may instead be JSON of another type (`loose`). Strings often carry
`MARK`, which must never reach an upstream's request line or headers.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

MARK = "qzx7mark"
"""In client strings and header names; the suite looks for it in upstream request heads."""

Strategy = st.SearchStrategy[Any]

PLAIN_TEXT = st.text(max_size=12)
MARKED = st.builds(lambda a, b: f"{a}{MARK}{b}", st.text(max_size=6), st.text(max_size=6))
TEXT = st.one_of(PLAIN_TEXT, MARKED)
NUMBER = st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False))
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT)
JSON: Strategy = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


JUNK = st.shared(st.booleans(), key="junk")
"""Drawn once per example: whether its body may hold wrong-type values at all (half of the
bodies have none, so that they reach the upstream and the answer's way back)."""


def loose(strategy: Strategy) -> Strategy:
    """`strategy` most of the time, else JSON of any type (a wrong-type field)."""
    junky = st.one_of(*[strategy] * 7, JSON)
    return JUNK.flatmap(lambda junk: junky if junk else strategy)


def words(*values: object) -> Strategy:
    return loose(st.sampled_from(values))


def obj(always: dict[str, Strategy], /, **optional: Strategy) -> Strategy:
    """A JSON object: the `always` keys, any of `optional`, rarely a stray marked key."""
    base = st.fixed_dictionaries(always, optional=optional)
    return st.builds(lambda d, extra: {**extra, **d}, base, _STRAY)


# Rare: an unknown top-level field stops most cross-protocol calls with a 400.
_STRAY = st.one_of(*[st.just({})] * 5, st.dictionaries(MARKED, JSON, min_size=1, max_size=1))


def listed(strategy: Strategy, max_size: int = 3) -> Strategy:
    return loose(st.lists(strategy, max_size=max_size))


INT = loose(st.integers(min_value=-2, max_value=70000))
FLOAT = loose(st.floats(min_value=-1, max_value=3, allow_nan=False))
BOOL = loose(st.booleans())
TOOL_ARGS = loose(st.sampled_from(['{"city": "Paris"}', "", "[1]", "{", '"x"', "{}"]) | TEXT)
BASE64 = st.sampled_from(["iVBORw0KGgo=", "", "not base64!", "QUJD"]) | TEXT
MIME = words("image/png", "image/jpeg", "application/pdf", "text/plain", "")


def _schema_node(children: Strategy) -> Strategy:
    return obj(
        {},
        type=words("object", "array", "string", "integer", "number", "boolean", "null")
        | st.lists(st.sampled_from(["string", "null", "object"]), max_size=2),
        properties=loose(st.dictionaries(TEXT, children, max_size=3)),
        items=children,
        anyOf=listed(children),
        oneOf=listed(children),
        allOf=listed(children),
        required=listed(TEXT),
        additionalProperties=loose(st.booleans() | children),
        enum=listed(SCALAR),
        **{
            "$defs": loose(st.dictionaries(st.sampled_from(["a", "b"]), children, max_size=2)),
            "$ref": words("#/$defs/a", "#/$defs/b", "#/definitions/a", "#/properties/x"),
        },
    )


SCHEMA: Strategy = loose(
    st.recursive(
        obj({}, type=words("string", "number", "boolean"), description=TEXT, format=TEXT),
        _schema_node,
        max_leaves=8,
    )
)

# Headers -------------------------------------------------------------------------------------
KNOWN_HEADERS = (
    "anthropic-beta",
    "anthropic-version",
    "anthropic-dangerous-direct-browser-access",
    "openai-organization",
    "openai-project",
    "openai-beta",
    "x-goog-user-project",
    "x-goog-api-client",
    "user-agent",
    "x-request-id",
    "traceparent",
    "x-stainless-lang",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-real-ip",
    "forwarded",
    "cookie",
    "proxy-authorization",
    "x-http-method-override",
    "via",
    "accept-encoding",
)
_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_"
# Printable ASCII, and what must never reach an upstream's framing: bare CR and LF, NUL, and
# bytes beyond ASCII.
_VALUE_CHARS = st.one_of(
    *[st.characters(min_codepoint=0x20, max_codepoint=0x7E)] * 15,
    st.sampled_from("\r\n\x00\t\x7fé"),
)
HEADER_VALUE = st.one_of(
    st.builds(
        lambda a, b: f"{a}{MARK}{b}",
        st.text(_VALUE_CHARS, max_size=10),
        st.text(_VALUE_CHARS, max_size=10),
    ),
    # A beta name the grammar takes, with the mark in it: forwarded, as the protocol defines.
    st.builds(lambda a: f"{MARK}-{a}", st.text(_TOKEN_CHARS, min_size=1, max_size=8)),
)
HEADER_NAME = st.one_of(
    st.sampled_from(KNOWN_HEADERS),
    st.builds(lambda a: f"x-{MARK}-{a}", st.text(_TOKEN_CHARS, max_size=8)),
)
HEADERS = st.lists(st.tuples(HEADER_NAME, HEADER_VALUE), max_size=4, unique_by=lambda h: h[0])


def encode(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
