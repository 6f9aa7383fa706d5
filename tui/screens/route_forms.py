"""Forms for a route (targets, strategy, weights) and for a tier's limits."""

from __future__ import annotations

from typing import Any

from textual.suggester import SuggestFromList
from textual.widgets import Input

from policies.models import Limits, Route, WeightedTarget
from tui import policy_ops
from tui.policy_ops import DEFAULT_TIER, Edit
from tui.screens.form import LIMIT_FIELDS, FormScreen, field

STRATEGIES = ("fallback", "round-robin", "weighted")


class RouteFormScreen(FormScreen):
    """`route` None creates one. Targets: `provider/model` or `provider/model=weight`."""

    def __init__(self, name: str | None, route: Route | None) -> None:
        super().__init__()
        self.route_name, self.route = name, route
        self.heading = f"Edit route {name}" if name else "New route"

    def form_fields(self) -> list[tuple[str, Input]]:
        route = self.route
        targets = ", ".join(_target_text(t) for t in route.targets) if route else None
        strategies = SuggestFromList(STRATEGIES)
        return [
            (
                "name",
                field(
                    "f-name",
                    self.route_name,
                    "model name clients send, or a glob",
                    disabled=bool(self.route_name),
                ),
            ),
            ("targets", field("f-targets", targets, "provider/model, ... (=weight for weighted)")),
            (
                "strategy",
                field(
                    "f-strategy",
                    route.strategy if route else None,
                    "fallback | round-robin | weighted",
                    suggester=strategies,
                ),
            ),
        ]

    def build(self) -> Edit:
        name = self.route_name or self.text("f-name")
        if not name:
            raise ValueError("give the route a name: the model name clients send")
        strategy = self.text("f-strategy") or "fallback"
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}")
        items = [t.strip() for t in self.text("f-targets").split(",") if t.strip()]
        if not items:
            raise ValueError("name at least one target, e.g. openai/gpt-4o-mini")
        weighted = strategy == "weighted"
        targets: list[Any] = [_target(item, weighted) for item in items]
        route = self.route
        explicit = route is not None and "strategy" in route.model_fields_set
        keep = explicit or strategy != "fallback"
        description = route.description if route else None
        return policy_ops.set_route(name, targets, strategy if keep else None, description)


def _target_text(target: str | WeightedTarget) -> str:
    if isinstance(target, WeightedTarget):
        return f"{target.target}={target.weight:g}"
    return target


def _target(item: str, weighted: bool) -> str | dict[str, Any]:
    target, sep, weight = item.partition("=")
    target = target.strip()
    if not sep:
        return {"target": target, "weight": 1} if weighted else target
    if not weighted:
        raise ValueError("weights (=N) need the weighted strategy")
    try:
        value = float(weight)
    except ValueError:
        raise ValueError(f"the weight of {target} must be a number, e.g. {target}=2") from None
    return {"target": target, "weight": int(value) if value.is_integer() else value}


class TierFormScreen(FormScreen):
    """A tier's limits (`(default)`: the default limits); an empty field is not limited."""

    def __init__(self, name: str | None, limits: Limits | None) -> None:
        super().__init__()
        self.tier_name, self.tier_limits = name, limits
        self.heading = f"Edit limits of {name}" if name else "New tier"

    def form_fields(self) -> list[tuple[str, Input]]:
        values = self.tier_limits.model_dump() if self.tier_limits else {}
        rows = [
            (
                "tier",
                field("f-name", self.tier_name, "e.g. standard", disabled=bool(self.tier_name)),
            )
        ]
        for name, label in LIMIT_FIELDS:
            rows.append((label, field(f"f-{name}", values.get(name), "empty: not limited")))
        return rows

    def build(self) -> Edit:
        name = self.tier_name or self.text("f-name")
        if not name:
            raise ValueError("give the tier a name, e.g. standard")
        limits = {k: v for k, v in self.limits().items() if v is not None}
        if name == DEFAULT_TIER:
            return policy_ops.set_default_limits(limits)
        return policy_ops.set_tier(name, limits)
