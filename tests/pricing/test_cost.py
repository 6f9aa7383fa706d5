"""Golden costs: each protocol's usage fields (cached, cache-write and reasoning tokens
included) charged at their own prices, in integer micro-dollars."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gateway.pricing import Price, usd_text
from gateway.pricing.price import Rates
from gateway.protocols import ADAPTER_OF_TYPE
from gateway.usage.tokens import Usage
from policies.models import ProviderType

# USD per million tokens: input 2, output 8, cached 0.5, cache write 2.5, reasoning 10.
PRICE = Price.per_million(
    Decimal(2), Decimal(8), Decimal("0.5"), Decimal("2.5"), Decimal(10), source="test"
)

# (provider type, a usage object as the upstream reports it, the expected micro-dollars)
# 1000 prompt tokens of which 600 cached and 100 written; 500 completion of which 200 reasoning.
FRESH, CACHED, WRITTEN, ANSWER, REASONING = 300, 600, 100, 300, 200
EXPECTED = FRESH * 2 + CACHED * 0.5 + WRITTEN * 2.5 + ANSWER * 8 + REASONING * 10

CASES: list[tuple[ProviderType, dict[str, Any], int]] = [
    (
        "openai",  # chat completions: cached and cache writes inside prompt_tokens
        {
            "usage": {
                "prompt_tokens": 1000,
                "completion_tokens": 500,
                "prompt_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 100},
                "completion_tokens_details": {"reasoning_tokens": 200},
            }
        },
        round(EXPECTED),
    ),
    (
        "openai",  # the Responses API's stream end
        {
            "type": "response.completed",
            "response": {
                "usage": {
                    "input_tokens": 1000,
                    "output_tokens": 500,
                    "input_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 100},
                    "output_tokens_details": {"reasoning_tokens": 200},
                }
            },
        },
        round(EXPECTED),
    ),
    (
        "anthropic",  # input_tokens leaves the cache reads and writes out; no reasoning field
        {
            "usage": {
                "input_tokens": 300,
                "cache_read_input_tokens": 600,
                "cache_creation_input_tokens": 100,
                "output_tokens": 500,
            }
        },
        round(FRESH * 2 + CACHED * 0.5 + WRITTEN * 2.5 + 500 * 8),
    ),
    (
        "gemini",  # thoughts are reported beside the candidates, not inside them
        {
            "usageMetadata": {
                "promptTokenCount": 1000,
                "cachedContentTokenCount": 600,
                "candidatesTokenCount": 300,
                "thoughtsTokenCount": 200,
            }
        },
        round(400 * 2 + CACHED * 0.5 + ANSWER * 8 + REASONING * 10),
    ),
    (
        "bedrock",  # Converse: like Anthropic, inputTokens leaves the cache out
        {
            "usage": {
                "inputTokens": 300,
                "cacheReadInputTokens": 600,
                "cacheWriteInputTokens": 100,
                "outputTokens": 500,
            }
        },
        round(FRESH * 2 + CACHED * 0.5 + WRITTEN * 2.5 + 500 * 8),
    ),
]


@pytest.mark.parametrize(("provider_type", "answer", "micros"), CASES)
def test_each_protocols_usage_is_charged_at_its_own_prices(
    provider_type: ProviderType, answer: dict[str, Any], micros: int
) -> None:
    usage = Usage()
    ADAPTER_OF_TYPE[provider_type].read_usage(answer, usage)
    assert PRICE.cost_micros(usage) == micros


def test_anthropic_stream_keeps_cache_figures_from_message_start() -> None:
    """message_start reports the prompt (cache included), message_delta the output only."""
    usage = Usage()
    adapter = ADAPTER_OF_TYPE["anthropic"]
    start = {
        "type": "message_start",
        "message": {
            "usage": {
                "input_tokens": 300,
                "cache_read_input_tokens": 600,
                "cache_creation_input_tokens": 100,
                "output_tokens": 1,
            }
        },
    }
    adapter.read_usage(start, usage)
    adapter.read_usage({"type": "message_delta", "usage": {"output_tokens": 500}}, usage)
    assert (usage.cached_tokens, usage.cache_write_tokens) == (600, 100)
    assert PRICE.cost_micros(usage) == round(FRESH * 2 + CACHED * 0.5 + WRITTEN * 2.5 + 500 * 8)


def test_costs_are_integers_and_sums_do_not_drift() -> None:
    cheap = Price.per_million(Decimal("0.1"), Decimal("0.3"))
    one = cheap.cost_micros(Usage(prompt_tokens=10_000, completion_tokens=10_000))
    assert one == 4000 and isinstance(one, int)
    assert sum(one for _ in range(1_000_000)) == 4_000_000_000  # exactly $4000
    assert usd_text(4_000_000_000) == "4000.000000" and usd_text(150) == "0.000150"


def test_left_out_kinds_default_to_input_and_output() -> None:
    flat = Price.per_million(Decimal(1), Decimal(4))
    usage = Usage(prompt_tokens=100, cached_tokens=50, cache_write_tokens=10, completion_tokens=20)
    usage.reasoning_tokens = 5
    assert flat.cost_micros(usage) == 100 * 1 + 20 * 4


def test_a_tier_applies_to_every_token_once_the_prompt_exceeds_it() -> None:
    base, long = Rates(1_000_000, 2_000_000, 0, 0, 0), Rates(2_000_000, 4_000_000, 0, 0, 0)
    tiered = Price(base, ((200_000, long),))
    assert tiered.cost_micros(Usage(prompt_tokens=200_000)) == 200_000
    assert tiered.cost_micros(Usage(prompt_tokens=200_001)) == 400_002


def test_odd_figures_never_charge_negative() -> None:
    usage = Usage(prompt_tokens=10, cached_tokens=50, completion_tokens=3)
    usage.reasoning_tokens = 9  # more than the completion: at most all of it
    assert PRICE.cost_micros(usage) >= 0
