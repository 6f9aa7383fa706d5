"""Each route target's price: prices.yaml first, then the genai-prices catalog.

prices.yaml keys are `PROVIDER/MODEL` globs over a target's provider NAME (as in
providers.yaml, not its type: two providers of one type, say a local vLLM and a paid
host, need different prices) and its upstream model. `*` matches any run of characters,
`/` included (upstream models such as `Qwen/Qwen2.5-7B` hold one); `?` and `[...]` as in
fnmatch. When several match, the most specific wins:
  1. an exact key (no wildcard);
  2. then the longest literal prefix before the first wildcard (`local/*` beats
     `*/llama3` for `local/llama3`: what a provider's entry says about it comes first);
  3. then the most literal characters;
  4. then the first in the file.
An entry replaces the catalog's price whole; its left-out kinds default as Price.per_million
says (cached and cache-write tokens at the input rate, reasoning at the output rate).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.pricing.catalog import catalog_price
from gateway.pricing.price import Price
from policies.models import Provider, TokenPrice

_WILDCARDS = "*?["


@dataclass(frozen=True, slots=True)
class _Override:
    pattern: str
    regex: re.Pattern[str]
    rank: tuple[int, int, int, int]
    price: Price


def specificity(pattern: str, index: int) -> tuple[int, int, int, int]:
    """The sort key of a prices.yaml pattern: higher is more specific (see the module doc)."""
    literal = sum(ch not in _WILDCARDS for ch in pattern)
    first = min((pattern.find(ch) for ch in _WILDCARDS if ch in pattern), default=-1)
    exact = first == -1
    return (int(exact), len(pattern) if exact else first, literal, -index)


def override_of(pattern: str, entry: TokenPrice, index: int) -> _Override:
    price = Price.per_million(
        entry.input,
        entry.output,
        entry.cached_input,
        entry.cache_write,
        entry.reasoning,
        source=f"prices.yaml: {pattern}",
    )
    regex = re.compile(fnmatch.translate(pattern))
    return _Override(pattern, regex, specificity(pattern, index), price)


class PriceBook:
    """Prices of one policy snapshot's targets, memoised by `provider/model` label.

    Built at compile; a glob route's targets are known only when a model name resolves,
    and are priced then, once each (Snapshot.resolve caches the route with its prices).
    """

    def __init__(self, overrides: Mapping[str, TokenPrice], catalog: bool = True) -> None:
        ordered = [override_of(p, e, i) for i, (p, e) in enumerate(overrides.items())]
        self._overrides = sorted(ordered, key=lambda o: o.rank, reverse=True)
        self._catalog = catalog
        self._prices: dict[str, Price | None] = {}

    def price(self, provider_name: str, provider: Provider, model: str) -> Price | None:
        """The price of `model` at this provider, or None when no source knows it."""
        label = f"{provider_name}/{model}"
        try:
            return self._prices[label]
        except KeyError:
            pass
        found = self._override(label)
        if found is None and self._catalog:
            found = catalog_price(provider.type, provider.base_url, model)
        if len(self._prices) < 16384:  # bounded: glob routes take model names from clients
            self._prices[label] = found
        return found

    def _override(self, label: str) -> Price | None:
        for override in self._overrides:  # most specific first
            if override.regex.fullmatch(label) is not None:
                return override.price
        return None

    def unpriced(self) -> list[str]:
        """Labels of the targets priced so far that have no known price."""
        return sorted(label for label, price in self._prices.items() if price is None)
