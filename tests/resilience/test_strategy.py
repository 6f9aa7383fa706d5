"""RouteCursors: the order a request tries a route's targets in, per strategy."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gateway.upstream.strategy import RouteCursors
from policies.models import Provider, Route, WeightedTarget
from policies.snapshot import ResolvedRoute, Target

PROVIDER = Provider(type="openai-compatible", base_url="http://127.0.0.1:9/v1")


def resolved(name: str, strategy: str, weights: dict[str, float]) -> ResolvedRoute:
    specs = tuple(WeightedTarget(target=f"p/{m}", weight=w) for m, w in weights.items())
    route = Route(targets=specs, strategy=strategy)  # type: ignore[arg-type]
    targets = tuple(Target("p", PROVIDER, m, w) for m, w in weights.items())
    return ResolvedRoute(name, name, route, targets)


def models(order: tuple[Target, ...]) -> list[str]:
    return [t.upstream_model for t in order]


def test_fallback_keeps_the_written_order() -> None:
    route = resolved("r", "fallback", {"a": 1, "b": 1, "c": 1})
    cursors = RouteCursors()
    assert all(models(cursors.order(route)) == ["a", "b", "c"] for _ in range(5))


def test_round_robin_is_exact_and_keeps_the_rest_as_fallbacks() -> None:
    route = resolved("r", "round-robin", {"a": 1, "b": 1, "c": 1})
    cursors = RouteCursors()
    orders = [models(cursors.order(route)) for _ in range(300)]
    assert Counter(o[0] for o in orders) == {"a": 100, "b": 100, "c": 100}
    assert orders[:4] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_round_robin_positions_are_per_route_name_and_outlive_the_route_object() -> None:
    cursors = RouteCursors()
    first = resolved("r", "round-robin", {"a": 1, "b": 1, "c": 1})
    other = resolved("other", "round-robin", {"a": 1, "b": 1, "c": 1})
    assert models(cursors.order(first))[0] == "a"
    assert models(cursors.order(other))[0] == "a"
    reloaded = resolved("r", "round-robin", {"a": 1, "b": 1, "c": 1})  # a new snapshot's route
    assert models(cursors.order(reloaded))[0] == "b"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_weighted_first_picks_follow_the_weights(seed: int) -> None:
    weights = {"a": 1, "b": 3, "c": 6}
    route = resolved("w", "weighted", weights)
    cursors = RouteCursors(rng=random.Random(seed).random)
    picks = Counter(models(cursors.order(route))[0] for _ in range(1000))
    for model, weight in weights.items():
        expected = 1000 * weight / sum(weights.values())
        # 4 standard deviations of a binomial: fails by chance about once in 15,000 runs.
        sigma = (expected * (1 - weight / sum(weights.values()))) ** 0.5
        assert abs(picks[model] - expected) < 4 * sigma, (model, picks)


def test_weighted_rest_follow_in_written_order() -> None:
    route = resolved("w", "weighted", {"a": 1, "b": 1, "c": 1})
    cursors = RouteCursors(rng=lambda: 0.5)  # the middle of the total: "b"
    assert models(cursors.order(route)) == ["b", "a", "c"]


def test_a_single_target_is_returned_as_is() -> None:
    route = resolved("one", "round-robin", {"a": 1})
    assert models(RouteCursors().order(route)) == ["a"]
