"""Near-valid request bodies per endpoint: each protocol's shape, in which any value may be
JSON of another type (`loose`), so every converter's reading code is reached (see
fuzz_strategies for the primitives)."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.security.fuzz_strategies import (
    BASE64,
    BOOL,
    FLOAT,
    INT,
    JSON,
    MARK,
    MIME,
    SCALAR,
    SCHEMA,
    TEXT,
    TOOL_ARGS,
    Strategy,
    listed,
    loose,
    obj,
    words,
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
