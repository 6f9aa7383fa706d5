"""What requests cost: prices compiled into the policy snapshot, charged in micro-dollars.

- `price.Price`: one target's rates (and tiers), and `cost_micros(usage)`, O(1).
- `catalog.catalog_price`: a default price from the `genai-prices` package (compile time only).
- `book.PriceBook`: prices.yaml overrides over the catalog, memoised per target.
"""

from gateway.pricing.book import PriceBook
from gateway.pricing.price import MICROS_PER_USD, Price, Rates, usd, usd_text

COST_HEADER = "x-modelgate-cost-usd"
"""On whole (non-stream) answers: the request's cost in dollars, absent when unknown."""

__all__ = ["COST_HEADER", "MICROS_PER_USD", "Price", "PriceBook", "Rates", "usd", "usd_text"]
