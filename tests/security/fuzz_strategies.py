"""Hypothesis strategies for hostile request bodies and headers.

Arbitrary JSON rarely gets past the first field check, so each endpoint also has a
structure-aware strategy: a body of the right shape in which any value may instead be JSON of
another type (`loose`), so that every converter's reading code is reached with near-valid
input. Strings often carry `MARK`, which must never reach an upstream's request line or
headers.
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

# OpenAI chat completions --------------------------------------------------------------------
_CHAT_PART = st.one_of(
    obj({"type": st.just("text"), "text": loose(TEXT)}),
    obj(
        {"type": st.just("image_url")},
        image_url=loose(
            obj(
                {
                    "url": words(
                        "https://example.com/cat.png",
                        "data:image/png;base64,iVBORw0KGgo=",
                        "data:image/png,raw",
                        "data:;base64,",
                        MARK,
                    )
                },
                detail=words("low", "high", "auto"),
            )
        ),
    ),
    obj({"type": words("refusal", "input_audio", "file", MARK)}, refusal=loose(TEXT)),
)
_CHAT_CONTENT = loose(st.one_of(TEXT, st.none(), st.lists(_CHAT_PART, max_size=3)))
_CHAT_CALL = obj(
    {"id": loose(TEXT), "type": words("function")},
    function=loose(obj({"name": loose(TEXT)}, arguments=TOOL_ARGS)),
)
_CHAT_MESSAGE = loose(
    obj(
        {"role": words("system", "developer", "user", "assistant", "tool", "function")},
        content=_CHAT_CONTENT,
        tool_calls=listed(_CHAT_CALL, 2),
        tool_call_id=loose(TEXT),
        reasoning_content=loose(TEXT),
        refusal=loose(TEXT),
        name=loose(TEXT),
    )
)
_CHAT_TOOL = obj(
    {"type": words("function", "custom")},
    function=loose(obj({"name": loose(TEXT)}, description=loose(TEXT), parameters=SCHEMA)),
)
_STREAM = {"stream": BOOL, "stream_options": loose(obj({}, include_usage=BOOL))}


def chat(model: str) -> Strategy:
    return obj(
        {"model": st.just(model), "messages": listed(_CHAT_MESSAGE, 4)},
        **_STREAM,
        max_tokens=INT,
        max_completion_tokens=INT,
        temperature=FLOAT,
        top_p=FLOAT,
        top_k=INT,
        n=INT,
        seed=INT,
        stop=loose(TEXT | st.lists(TEXT, max_size=2)),
        tools=listed(_CHAT_TOOL, 2),
        tool_choice=words("auto", "none", "required")
        | obj({"type": st.just("function"), "function": loose(obj({"name": loose(TEXT)}))}),
        parallel_tool_calls=BOOL,
        response_format=loose(
            obj(
                {"type": words("text", "json_object", "json_schema")},
                json_schema=loose(obj({"name": loose(TEXT)}, schema=SCHEMA, strict=BOOL)),
            )
        ),
        reasoning_effort=words("none", "minimal", "low", "medium", "high", "xhigh", MARK),
        user=loose(TEXT),
        metadata=loose(st.dictionaries(TEXT, TEXT, max_size=2)),
        presence_penalty=FLOAT,
        frequency_penalty=FLOAT,
    )


def completions(model: str) -> Strategy:
    return obj(
        {"model": st.just(model), "prompt": loose(TEXT | st.lists(TEXT, max_size=2))},
        **_STREAM,
        max_tokens=INT,
        temperature=FLOAT,
        stop=loose(TEXT),
        suffix=loose(TEXT),
    )


def embeddings(model: str) -> Strategy:
    return obj(
        {
            "model": st.just(model),
            "input": loose(
                TEXT
                | st.lists(TEXT, max_size=3)
                | st.lists(st.integers(0, 100000), max_size=3)
                | st.lists(st.lists(st.integers(0, 100000), max_size=3), max_size=2)
            ),
        },
        encoding_format=words("float", "base64", MARK),
        dimensions=INT,
        user=loose(TEXT),
    )


# OpenAI responses ----------------------------------------------------------------------------
_RESPONSES_PART = obj(
    {"type": words("input_text", "output_text", "input_image", "input_file", "refusal", MARK)},
    text=loose(TEXT),
    image_url=words("https://example.com/a.png", "data:image/png;base64,QUJD", MARK),
    detail=words("low", "auto"),
    refusal=loose(TEXT),
)
_RESPONSES_ITEM = loose(
    st.one_of(
        obj(
            {"role": words("user", "assistant", "system", "developer", "tool")},
            type=words("message"),
            content=loose(TEXT | st.lists(_RESPONSES_PART, max_size=3)),
        ),
        obj(
            {"type": st.just("function_call")},
            call_id=loose(TEXT),
            name=loose(TEXT),
            arguments=TOOL_ARGS,
            id=loose(TEXT),
        ),
        obj(
            {"type": st.just("function_call_output")},
            call_id=loose(TEXT),
            output=loose(TEXT | st.lists(_RESPONSES_PART, max_size=2)),
        ),
        obj(
            {"type": st.just("reasoning")},
            summary=listed(obj({"type": words("summary_text")}, text=loose(TEXT))),
            encrypted_content=loose(TEXT),
        ),
        obj({"type": words("item_reference", "web_search_call", MARK)}, id=loose(TEXT)),
    )
)
_RESPONSES_TOOL = obj(
    {"type": words("function", "web_search", "file_search")},
    name=loose(TEXT),
    description=loose(TEXT),
    parameters=SCHEMA,
    strict=BOOL,
)


def responses(model: str) -> Strategy:
    return obj(
        {"model": st.just(model), "input": loose(TEXT | st.lists(_RESPONSES_ITEM, max_size=4))},
        instructions=loose(TEXT),
        tools=listed(_RESPONSES_TOOL, 2),
        tool_choice=words("auto", "none", "required")
        | obj({"type": st.just("function")}, name=loose(TEXT)),
        text=loose(
            obj(
                {},
                format=loose(
                    obj(
                        {"type": words("text", "json_object", "json_schema")},
                        name=loose(TEXT),
                        schema=SCHEMA,
                        strict=BOOL,
                    )
                ),
            )
        ),
        reasoning=loose(obj({}, effort=words("low", "high", MARK), summary=words("auto"))),
        max_output_tokens=INT,
        temperature=FLOAT,
        top_p=FLOAT,
        stream=BOOL,
        store=BOOL,
        background=BOOL,
        previous_response_id=loose(TEXT),
        parallel_tool_calls=BOOL,
        metadata=loose(st.dictionaries(TEXT, TEXT, max_size=2)),
        user=loose(TEXT),
    )


# Anthropic messages --------------------------------------------------------------------------
_SOURCE = loose(
    obj(
        {"type": words("base64", "url", "text", MARK)},
        media_type=MIME,
        data=loose(BASE64),
        url=words("https://example.com/cat.png", MARK),
    )
)
_ANTHROPIC_TEXT = obj({"type": st.just("text"), "text": loose(TEXT)})
_ANTHROPIC_BLOCK = st.one_of(
    _ANTHROPIC_TEXT,
    obj({"type": words("image", "document")}, source=_SOURCE),
    obj(
        {"type": st.just("tool_use")},
        id=loose(TEXT),
        name=loose(TEXT),
        input=loose(st.dictionaries(TEXT, SCALAR, max_size=2)),
    ),
    obj(
        {"type": st.just("tool_result")},
        tool_use_id=loose(TEXT),
        content=loose(TEXT | st.lists(_ANTHROPIC_TEXT, max_size=2)),
        is_error=BOOL,
    ),
    obj({"type": st.just("thinking")}, thinking=loose(TEXT), signature=loose(TEXT)),
    obj({"type": st.just("redacted_thinking")}, data=loose(TEXT)),
    obj({"type": words("server_tool_use", "search_result", MARK)}),
)
_ANTHROPIC_MESSAGE = loose(
    obj(
        {"role": words("user", "assistant", "system")},
        content=loose(TEXT | st.lists(_ANTHROPIC_BLOCK, max_size=3)),
    )
)
_ANTHROPIC_TOOL = obj(
    {"name": loose(TEXT)},
    description=loose(TEXT),
    input_schema=SCHEMA,
    type=words("custom", "web_search_20250305", "bash_20250124"),
)


def _anthropic_fields(
    model: str, always: dict[str, Strategy] | None = None, **extra: Strategy
) -> Strategy:
    return obj(
        {"model": st.just(model), "messages": listed(_ANTHROPIC_MESSAGE, 4), **(always or {})},
        system=loose(TEXT | st.lists(_ANTHROPIC_TEXT, max_size=2)),
        tools=listed(_ANTHROPIC_TOOL, 2),
        tool_choice=loose(
            obj(
                {"type": words("auto", "any", "tool", "none")},
                name=loose(TEXT),
                disable_parallel_tool_use=BOOL,
            )
        ),
        thinking=loose(obj({"type": words("enabled", "disabled", "adaptive")}, budget_tokens=INT)),
        **extra,
    )


def anthropic_messages(model: str) -> Strategy:
    return _anthropic_fields(
        model,
        {"max_tokens": INT},
        stream=BOOL,
        stop_sequences=listed(TEXT),
        temperature=FLOAT,
        top_p=FLOAT,
        top_k=INT,
        metadata=loose(obj({}, user_id=loose(TEXT))),
        output_config=loose(obj({}, effort=words("low", "high", "max", MARK))),
    )


def anthropic_count_tokens(model: str) -> Strategy:
    return _anthropic_fields(model)


# Gemini --------------------------------------------------------------------------------------
_GEMINI_PART = st.one_of(
    obj({"text": loose(TEXT)}, thought=BOOL, thoughtSignature=loose(BASE64)),
    obj({"inlineData": loose(obj({"mimeType": MIME, "data": loose(BASE64)}))}),
    obj({"fileData": loose(obj({"mimeType": MIME, "fileUri": loose(TEXT)}))}),
    obj(
        {
            "functionCall": loose(
                obj({"name": loose(TEXT)}, args=loose(st.dictionaries(TEXT, SCALAR)))
            )
        },
        thoughtSignature=loose(BASE64),
    ),
    obj(
        {
            "functionResponse": loose(
                obj({"name": loose(TEXT)}, response=loose(st.dictionaries(TEXT, JSON, max_size=2)))
            )
        }
    ),
    obj({"executableCode": JSON}),
)
_GEMINI_CONTENT = loose(
    obj({"parts": listed(_GEMINI_PART, 3)}, role=words("user", "model", "function", "system"))
)
_GEMINI_DECLARATION = obj(
    {"name": loose(TEXT)},
    description=loose(TEXT),
    parameters=SCHEMA,
    parametersJsonSchema=SCHEMA,
)
_GEMINI_TOOL = st.one_of(
    obj({"functionDeclarations": listed(_GEMINI_DECLARATION, 2)}),
    obj({}, googleSearch=loose(obj({})), codeExecution=loose(obj({}))),
)
_GENERATION_CONFIG = loose(
    obj(
        {},
        temperature=FLOAT,
        topP=FLOAT,
        topK=INT,
        maxOutputTokens=INT,
        candidateCount=INT,
        stopSequences=listed(TEXT),
        responseMimeType=words("application/json", "text/plain", "text/x.enum"),
        responseSchema=SCHEMA,
        responseJsonSchema=SCHEMA,
        responseModalities=listed(words("TEXT", "IMAGE")),
        thinkingConfig=loose(
            obj({}, thinkingBudget=INT, includeThoughts=BOOL, thinkingLevel=words("low", "high"))
        ),
    )
)
_GENERATE_FIELDS: dict[str, Strategy] = {
    "systemInstruction": _GEMINI_CONTENT,
    "tools": listed(_GEMINI_TOOL, 2),
    "toolConfig": loose(
        obj(
            {},
            functionCallingConfig=loose(
                obj(
                    {},
                    mode=words("AUTO", "ANY", "NONE", "VALIDATED", MARK),
                    allowedFunctionNames=listed(TEXT),
                )
            ),
        )
    ),
    "generationConfig": _GENERATION_CONFIG,
    "safetySettings": listed(obj({}, category=loose(TEXT), threshold=loose(TEXT))),
    "cachedContent": loose(TEXT),
}


def gemini_generate(model: str) -> Strategy:
    del model  # the model is in the path
    return obj({"contents": listed(_GEMINI_CONTENT, 4)}, **_GENERATE_FIELDS)


def gemini_count_tokens(model: str) -> Strategy:
    return st.one_of(
        gemini_generate(model),
        obj(
            {},
            generateContentRequest=loose(
                obj({"contents": listed(_GEMINI_CONTENT, 3)}, model=loose(TEXT), **_GENERATE_FIELDS)
            ),
        ),
    )


_EMBED_REQUEST = obj(
    {"content": _GEMINI_CONTENT},
    taskType=words("RETRIEVAL_QUERY", MARK),
    outputDimensionality=INT,
    title=loose(TEXT),
)


def gemini_embed(model: str) -> Strategy:
    del model
    return _EMBED_REQUEST


def gemini_batch_embed(model: str) -> Strategy:
    return obj(
        {
            "requests": listed(
                st.builds(
                    lambda r, m: {**r, **m},
                    _EMBED_REQUEST,
                    obj({}, model=words(f"models/{model}", MARK)),
                ),
                3,
            )
        }
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
