"""Default prices from the maintained `genai-prices` package, looked up at policy compile.

A provider's type names the catalog's provider (an openai-compatible one is found by its
base URL, so a self-hosted server on localhost has no default price: price it in
prices.yaml). Standard prices as of now are taken (no batch or priority variants); tiers
are kept: each threshold becomes a full set of rates.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from genai_prices import data_snapshot
from genai_prices.types import ModelPrice, Provider, TieredPrices

from gateway.pricing.price import Price, Rates, rates_per_million
from policies.models import ProviderType

CATALOG_PROVIDER: dict[ProviderType, str | None] = {
    "openai": "openai",
    "azure-openai": "azure",
    "anthropic": "anthropic",
    "gemini": "google",
    "bedrock": "aws",
    "openai-compatible": None,  # found by its base URL, if the catalog knows the host
}


def catalog_price(provider_type: ProviderType, base_url: str, model: str) -> Price | None:
    """The catalog's price of `model` at a provider of this type and URL, or None."""
    snapshot = data_snapshot.get_snapshot()
    provider_id = CATALOG_PROVIDER.get(provider_type)
    try:
        if provider_id is None:
            provider: Provider = snapshot.find_provider(None, None, base_url)
            provider_id = provider.id
        found, info = snapshot.find_provider_model(
            model.removeprefix("models/"), None, provider_id, None
        )
    except LookupError:
        return None
    prices = info.get_prices(dt.datetime.now(dt.UTC))
    if prices.input_mtok is None or prices.output_mtok is None:
        return None  # priced per image, second or request: not by the token
    rates, tiers = _rates_and_tiers(prices)
    return Price(rates, tiers, f"genai-prices: {found.id}/{info.id}")


_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")


def _rates_and_tiers(prices: ModelPrice) -> tuple[Rates, tuple[tuple[int, Rates], ...]]:
    starts = sorted(
        {
            tier.start
            for key in (*_KEYS, "output_reasoning_mtok")
            if isinstance(value := getattr(prices, key), TieredPrices)
            for tier in value.tiers
        }
    )
    base = _rates_at(prices, 0)
    return base, tuple((start, _rates_at(prices, start + 1)) for start in starts)


def _rates_at(prices: ModelPrice, prompt_tokens: int) -> Rates:
    """Every rate as it applies to a prompt of `prompt_tokens` (cliff tiers, as the
    catalog computes them: a tier applies once the prompt exceeds its start)."""

    def at(key: str) -> Decimal | None:
        value = getattr(prices, key)
        if not isinstance(value, TieredPrices):
            return value if isinstance(value, Decimal) else None
        applied = value.base
        for tier in value.tiers:
            if prompt_tokens > tier.start:
                applied = tier.price
        return applied

    input_rate, output_rate = at("input_mtok"), at("output_mtok")
    assert input_rate is not None and output_rate is not None
    return rates_per_million(
        input_rate,
        output_rate,
        at("cache_read_mtok"),
        at("cache_write_mtok"),
        at("output_reasoning_mtok"),
    )
