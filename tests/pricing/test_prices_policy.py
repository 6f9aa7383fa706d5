"""prices.yaml: validation with positions, glob precedence, the catalog underneath, and the
warning `policy check` gives for a target with no known price."""

from __future__ import annotations

import pytest

from gateway.pricing import PriceBook
from policies.check import check_files, warnings_of
from policies.loader import load_policy
from policies.models import Provider, TokenPrice
from policies.problems import PolicyInvalid
from policies.snapshot import Snapshot

PROVIDERS = b"""
providers:
  openai:
    type: openai
    base_url: https://api.openai.com/v1
  local:
    type: openai-compatible
    base_url: http://127.0.0.1:8000/v1
"""
ROUTES = b"""
routes:
  gpt-4o-mini:
    targets: [openai/gpt-4o-mini]
  llama:
    targets:
      - local/llama3
"""
OPENAI = Provider(type="openai", base_url="https://api.openai.com/v1")


def _book(entries: dict[str, tuple[int, int]]) -> PriceBook:
    return PriceBook({p: TokenPrice(input=i, output=o) for p, (i, o) in entries.items()})  # type: ignore[arg-type]


def _input_rate(book: PriceBook, label: str) -> int | None:
    name, _, model = label.partition("/")
    price = book.price(name, OPENAI, model)
    return None if price is None else price.rates.input


@pytest.mark.parametrize(
    ("entries", "label", "winner"),
    [
        ({"openai/*": (1, 1), "openai/gpt-4o-mini": (2, 2)}, "openai/gpt-4o-mini", 2),
        ({"openai/gpt-4o-mini": (2, 2), "openai/*": (1, 1)}, "openai/gpt-4o-mini", 2),
        # a longer literal prefix beats more literal characters after a wildcard
        ({"*/gpt-4o-mini": (3, 3), "openai/*": (1, 1)}, "openai/gpt-4o-mini", 1),
        ({"openai/gpt-*": (4, 4), "openai/*": (1, 1)}, "openai/gpt-4o-mini", 4),
        # same prefix: more literal characters, then the first in the file
        ({"openai/gpt*": (5, 5), "openai/gpt*mini": (6, 6)}, "openai/gpt-4o-mini", 6),
        ({"openai/g?t*": (7, 7), "openai/g*t*": (8, 8)}, "openai/gpt-4o-mini", 7),
        # `*` crosses `/` in upstream model names
        ({"local/*": (0, 0)}, "local/Qwen/Qwen2.5-7B", 0),
    ],
)
def test_the_most_specific_glob_wins(
    entries: dict[str, tuple[int, int]], label: str, winner: int
) -> None:
    assert _input_rate(_book(entries), label) == winner * 1_000_000


def test_an_override_replaces_the_catalog_and_the_catalog_prices_the_rest() -> None:
    book = _book({"openai/gpt-4o-mini": (9, 9)})
    own = book.price("openai", OPENAI, "gpt-4o-mini")
    assert own is not None and own.source == "prices.yaml: openai/gpt-4o-mini"
    catalog = book.price("openai", OPENAI, "gpt-4o")
    assert catalog is not None and catalog.source.startswith("genai-prices: openai/")
    assert catalog.rates.cached_input < catalog.rates.input  # the catalog's cached price


def test_prices_yaml_compiles_into_each_target() -> None:
    files = {
        "providers.yaml": PROVIDERS,
        "routes.yaml": ROUTES,
        "prices.yaml": b"prices:\n  local/*: {input: 0, output: 0}\n",
    }
    snapshot = Snapshot.compile(load_policy(files), "c1")
    local = snapshot.resolve("llama")
    assert local is not None and local.targets[0].price is not None
    assert local.targets[0].price.source == "prices.yaml: local/*"
    assert snapshot.unpriced_targets() == []


def test_an_unpriced_target_is_listed_and_warned_about() -> None:
    files = {"providers.yaml": PROVIDERS, "routes.yaml": ROUTES}
    snapshot = Snapshot.compile(load_policy(files), "c1")
    assert snapshot.unpriced_targets() == ["local/llama3"]
    route = snapshot.resolve("llama")
    assert route is not None and route.targets[0].price is None
    assert check_files(files) == []  # a warning, not a problem
    [warning] = warnings_of(files)
    assert (warning.file, warning.line, warning.col) == ("routes.yaml", 7, 9)
    assert "no known price for local/llama3" in warning.message


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        (b"prices:\n  nobody/x: {input: 1, output: 2}\n", (2, 3), "'nobody' is not a provider"),
        (b"prices:\n  local/x: {input: -1, output: 2}\n", (2, 20), "at least 0"),
        (b"prices:\n  local/x: {input: 1}\n", (2, 12), "output"),
        (b"prices:\n  local/x: {input: 1, output: 2, cached: 1}\n", (2, 34), "cached"),
        (b"prices:\n  nope: {input: 1, output: 2}\n", (2, 3), "nope"),
    ],
)
def test_prices_yaml_problems_have_positions(
    text: bytes, where: tuple[int, int], words: str
) -> None:
    files = {"providers.yaml": PROVIDERS, "routes.yaml": ROUTES, "prices.yaml": text}
    with pytest.raises(PolicyInvalid) as raised:
        load_policy(files)
    [problem] = raised.value.problems
    assert problem.file == "prices.yaml"
    assert (problem.line, problem.col) == where, str(problem)
    assert words in problem.message, str(problem)
