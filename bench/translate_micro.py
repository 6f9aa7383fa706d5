#!/usr/bin/env python3
"""CPU cost of protocol translation for a ~2 KB chat, per call, against pass-through.

For every (client, provider) pair: parse the client's request body, convert it to the
provider's body and serialise it, then parse the provider's answer, convert it back and
serialise it. Pass-through is what the same-protocol path does with the same bytes: parse
the body, rewrite the model, serialise (the answer bytes go back untouched). The numbers
are medians over many batches of calls, in microseconds, from process CPU time.

    ./dev python bench/translate_micro.py [--batches 200] [--batch 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from gateway.translate import CONVERTERS
from gateway.translate.canonical import ChatResponse, TextPart, ToolCallPart, Usage

SYSTEM = "You are a meticulous travel assistant. Answer briefly and cite the tool results."
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City and country"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}


def openai_chat_2kb() -> dict[str, Any]:
    turns: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    for i in range(4):
        turns.append(
            {"role": "user", "content": f"Question {i}: what should I pack for Oslo? " * 3}
        )
        turns.append({"role": "assistant", "content": f"Answer {i}: layers and a raincoat. " * 3})
    turns.append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location":"Oslo"}'},
                }
            ],
        }
    )
    turns.append({"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 4, "rain": true}'})
    turns.append({"role": "user", "content": "So, umbrella or not?"})
    return {
        "model": "route",
        "messages": turns,
        "tools": [TOOL],
        "max_tokens": 400,
        "temperature": 0.3,
    }


ANSWER = ChatResponse(
    id="resp1",
    model="upstream",
    parts=[
        TextPart("Take an umbrella: 4°C with rain in Oslo. " * 6),
        ToolCallPart("c2", "f", "{}"),
    ],
    finish_reason="tool_calls",
    usage=Usage(512, 64, 576, cached_prompt_tokens=256),
)


def cpu_per_call(fn: Callable[[], object], batches: int, batch: int) -> float:
    """Median CPU microseconds per call."""
    for _ in range(batch):
        fn()
    samples = []
    for _ in range(batches):
        start = time.process_time_ns()
        for _ in range(batch):
            fn()
        samples.append((time.process_time_ns() - start) / batch / 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    base = CONVERTERS["openai"].request_to_canonical(openai_chat_2kb())
    requests = {
        name: orjson.dumps(conv.request_from_canonical(base, "route"))
        for name, conv in CONVERTERS.items()
    }
    answers = {
        name: orjson.dumps(conv.response_from_canonical(ANSWER, "upstream"))
        for name, conv in CONVERTERS.items()
    }
    print(f"request sizes (bytes): { {k: len(v) for k, v in requests.items()} }")
    print(f"{'client':>17} -> {'provider':<17} {'translate µs':>13} {'pass µs':>8} {'added µs':>9}")
    worst = 0.0
    for client, client_conv in CONVERTERS.items():
        raw_req = requests[client]

        def passthrough(raw: bytes = raw_req) -> bytes:
            body = orjson.loads(raw)
            return orjson.dumps({**body, "model": "upstream"})

        base_us = cpu_per_call(passthrough, args.batches, args.batch)
        for provider, provider_conv in CONVERTERS.items():
            if provider == "openai_responses" or provider == client:
                continue
            raw_answer = answers[provider]

            def translate(
                raw: bytes = raw_req,
                answer: bytes = raw_answer,
                c: Any = client_conv,
                p: Any = provider_conv,
            ) -> tuple[bytes, bytes]:
                req = c.request_to_canonical(orjson.loads(raw))
                up = orjson.dumps(p.request_from_canonical(req, "upstream"))
                resp = p.response_to_canonical(orjson.loads(answer))
                return up, orjson.dumps(c.response_from_canonical(resp, "route"))

            us = cpu_per_call(translate, args.batches, args.batch)
            worst = max(worst, us - base_us)
            print(f"{client:>17} -> {provider:<17} {us:13.1f} {base_us:8.1f} {us - base_us:9.1f}")
    print(f"worst added CPU per request+response: {worst:.1f} µs (budget 300 µs)")
    stream_events(args.batches, args.batch)


def stream_events(batches: int, batch: int) -> None:
    """CPU per streamed text event: upstream SSE bytes in, client SSE bytes out."""
    from gateway.translate import StreamTranslator
    from gateway.translate.canonical import Start, TextDelta

    print(f"{'provider':>17} -> {'client':<17} {'µs per text event':>18}")
    for provider, conv in CONVERTERS.items():
        if provider == "openai_responses":
            continue
        encoder = conv.StreamEncoder("upstream")
        head = encoder.feed(Start("id1", "upstream"))
        event = encoder.feed(TextDelta("Take an umbrella, "))
        for client in CONVERTERS:
            if client == provider:
                continue
            translator = StreamTranslator(client, provider, "route")
            translator.feed(head + event)
            us = cpu_per_call(lambda t=translator, e=event: t.feed(e), batches, batch)
            print(f"{provider:>17} -> {client:<17} {us:18.1f}")


if __name__ == "__main__":
    main()
