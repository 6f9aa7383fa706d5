"""A target's price and the cost of one request's usage, in integer micro-dollars.

Rates are kept as integer pico-dollars per token (USD per million tokens x 10^6), so a
request's cost is a few integer multiplies, rounded once to whole micro-dollars; sums of
costs are sums of integers and never drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from gateway.usage.tokens import Usage

MICROS_PER_USD = 1_000_000
_PICO_PER_MICRO = 1_000_000


def rate_of(usd_per_million_tokens: Decimal) -> int:
    """USD per million tokens as integer pico-dollars per token (exact to 10^-6 USD/Mtok)."""
    return int((usd_per_million_tokens * _PICO_PER_MICRO).to_integral_value(ROUND_HALF_UP))


def usd_text(micros: int) -> str:
    """Micro-dollars as an exact decimal string of dollars (`0.000150`), for headers."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_USD)
    return f"{sign}{whole}.{frac:06d}"


def usd(micros: int) -> float:
    """Micro-dollars as dollars, for display (sums are made over the integers)."""
    return micros / MICROS_PER_USD


@dataclass(frozen=True, slots=True)
class Rates:
    """Pico-dollars per token of each kind (see rate_of)."""

    input: int
    output: int
    cached_input: int
    cache_write: int
    reasoning: int

    def pico(self, usage: Usage) -> int:
        cached, written = usage.cached_tokens, usage.cache_write_tokens
        fresh = max(usage.prompt_tokens - cached - written, 0)
        reasoning = min(usage.reasoning_tokens, usage.completion_tokens)
        answer = usage.completion_tokens - reasoning
        return (
            fresh * self.input
            + cached * self.cached_input
            + written * self.cache_write
            + answer * self.output
            + reasoning * self.reasoning
        )


@dataclass(frozen=True, slots=True)
class Price:
    """A target's rates; `tiers` (ascending thresholds) replace them all once the prompt
    (cached and written tokens included) exceeds a threshold, as providers bill long
    contexts (genai-prices' tiers)."""

    rates: Rates
    tiers: tuple[tuple[int, Rates], ...] = ()
    source: str = ""
    """Where it comes from: `prices.yaml: PATTERN` or `genai-prices: PROVIDER/MODEL`."""

    def cost_micros(self, usage: Usage) -> int:
        rates = self.rates
        for start, tier in self.tiers:
            if usage.prompt_tokens > start:
                rates = tier
        return (rates.pico(usage) + _PICO_PER_MICRO // 2) // _PICO_PER_MICRO

    @classmethod
    def per_million(
        cls,
        input: Decimal,
        output: Decimal,
        cached_input: Decimal | None = None,
        cache_write: Decimal | None = None,
        reasoning: Decimal | None = None,
        source: str = "",
    ) -> Price:
        """A flat price from USD per million tokens; a left-out kind costs as input (cached
        and cache-write tokens) or as output (reasoning tokens)."""
        return cls(
            rates_per_million(input, output, cached_input, cache_write, reasoning), (), source
        )


def rates_per_million(
    input: Decimal,
    output: Decimal,
    cached_input: Decimal | None,
    cache_write: Decimal | None,
    reasoning: Decimal | None,
) -> Rates:
    def pick(value: Decimal | None, default: Decimal) -> int:
        return rate_of(default if value is None else value)

    return Rates(
        input=rate_of(input),
        output=rate_of(output),
        cached_input=pick(cached_input, input),
        cache_write=pick(cache_write, input),
        reasoning=pick(reasoning, output),
    )
