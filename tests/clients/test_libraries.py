"""The Python libraries agents are built on, through every provider type: LangChain's
ChatOpenAI (chat completions and the Responses API), ChatAnthropic, and litellm.

Each asks for a tool, runs it here, sends its result back and streams the final answer,
which must quote the result: a tool call and its result make the round trip through the
gateway (and through translation, where the route crosses protocols).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from tests.clients.agent_script import TOOL_MARKER, Script
from tests.clients.conftest import PROVIDER_TYPES, ClientsDeployment, check, new_token
from tests.clients.programs import Run

TOOL = "read_secret"
PROMPT = f"What does the secret say? {TOOL_MARKER}"


def _langchain(make: Callable[[str, str], Any]) -> Callable[[str, str, str], str]:
    """A LangChain chat model's round trip: invoke, run the tool, stream the answer."""

    def run(url: str, key: str, token: str) -> str:
        from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
        from langchain_core.tools import tool

        @tool(TOOL)
        def read_secret(name: str) -> str:
            """Read the named secret."""
            return token

        model = make(url, key).bind_tools([read_secret])
        messages: list[BaseMessage] = [HumanMessage(PROMPT)]
        asked = model.invoke(messages)
        (call,) = asked.tool_calls
        assert call["name"] == TOOL, call
        messages += [asked, ToolMessage(read_secret.invoke(call["args"]), tool_call_id=call["id"])]
        return "".join(chunk.text for chunk in model.stream(messages))

    return run


def _chat_openai(responses: bool) -> Callable[[str, str, str], str]:
    def make(url: str, key: str) -> Any:
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model="gpt-5", base_url=url + "/v1", api_key=key, max_retries=0,
            use_responses_api=responses,
        )  # fmt: skip

    return _langchain(make)


def _chat_anthropic(url: str, key: str) -> Any:
    from langchain_anthropic import ChatAnthropic

    return ChatAnthropic(model="claude-sonnet-4-5", base_url=url, api_key=key, max_retries=0)


def _litellm(url: str, key: str, token: str) -> str:
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no fetch of its price list
    import litellm

    litellm.telemetry = False
    tools = [
        {
            "type": "function",
            "function": {
                "name": TOOL,
                "description": "Read the named secret.",
                "parameters": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
        }
    ]
    common: dict[str, Any] = {"model": "openai/gpt-4o", "api_base": url + "/v1", "api_key": key}
    messages: list[dict[str, Any]] = [{"role": "user", "content": PROMPT}]
    asked = litellm.completion(messages=messages, tools=tools, **common)
    call = asked.choices[0].message.tool_calls[0]
    assert call.function.name == TOOL
    messages += [
        asked.choices[0].message.model_dump(),
        {"role": "tool", "tool_call_id": call.id, "content": token},
    ]
    stream = litellm.completion(messages=messages, tools=tools, stream=True, **common)
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream)


LIBRARIES: dict[str, Callable[[str, str, str], str]] = {
    "langchain-chat-openai": _chat_openai(responses=False),
    "langchain-chat-openai-responses": _chat_openai(responses=True),
    "langchain-chat-anthropic": _langchain(_chat_anthropic),
    "litellm": _litellm,
}


@pytest.mark.parametrize("provider_type", PROVIDER_TYPES)
@pytest.mark.parametrize("library", LIBRARIES)
def test_library(clients: ClientsDeployment, library: str, provider_type: str) -> None:
    token = new_token()
    plan = Script(TOOL, {"name": "secret"})

    def act() -> Run:
        try:
            return Run(0, LIBRARIES[library](clients.gateway.url, clients.key, token))
        except Exception as exc:  # the client's own error, shown with the outcome
            return Run(1, f"{type(exc).__name__}: {exc}"[:2000] + json.dumps(library))

    check(clients.exercise(provider_type, plan, token, act))
