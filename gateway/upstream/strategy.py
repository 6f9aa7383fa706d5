"""The order in which a request tries a route's targets.

fallback: as written. round-robin: each request starts one further along, the rest follow
as fallbacks. weighted: the first target drawn by weight, the rest in written order.
Positions are keyed by route name, so they survive policy reloads.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from policies.snapshot import ResolvedRoute, Target


class RouteCursors:
    def __init__(self, rng: Callable[[], float] = random.random) -> None:
        self._positions: dict[str, int] = {}
        self._rng = rng

    def order(self, route: ResolvedRoute) -> tuple[Target, ...]:
        targets = route.targets
        if len(targets) < 2:
            return targets
        strategy = route.route.strategy
        if strategy == "round-robin":
            start = self._positions.get(route.name, 0) % len(targets)
            self._positions[route.name] = start + 1
            return targets[start:] + targets[:start]
        if strategy == "weighted":
            first = self._draw(targets)
            return (targets[first], *targets[:first], *targets[first + 1 :])
        return targets

    def _draw(self, targets: tuple[Target, ...]) -> int:
        point = self._rng() * sum(t.weight for t in targets)
        for index, target in enumerate(targets):
            point -= target.weight
            if point < 0:
                return index
        return len(targets) - 1
