"""One limit of one key or team: a label, a bar of use against the limit, and the numbers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

from gateway.payloads import BudgetUse, Use
from policies.models import MICROS_PER_USD
from tui import cells

QuotaName = Literal[
    "rpm", "tpm", "tokens_per_day", "tokens_per_month", "usd_per_day", "usd_per_month"
]
QUOTAS: tuple[tuple[QuotaName, str], ...] = (
    ("rpm", "requests/min"),
    ("tpm", "tokens/min"),
    ("tokens_per_day", "tokens/day"),
    ("tokens_per_month", "tokens/month"),
)
"""The usage report's fields, as the bars are labelled."""


class QuotaBar(Horizontal):
    """Shows `{"limit": N | None, "used": M}` from /admin/api/usage (None: unknown)."""

    def __init__(self, name: QuotaName, label: str) -> None:
        super().__init__(classes="quota")
        self.quota_name = name
        self.quota_label = label

    def compose(self) -> ComposeResult:
        yield Label(self.quota_label, classes="quota-label")
        yield ProgressBar(total=1, show_eta=False, classes="quota-bar")
        yield Label("", classes="quota-numbers")

    def show(self, use: Use | None) -> None:
        self._show(use, cells.count)

    def show_usd(self, use: BudgetUse | None) -> None:
        """A USD budget: `used` and `limit` in micro-dollars, shown as dollars."""
        self._show(use, lambda micros: cells.money(micros / MICROS_PER_USD))

    def _show(self, use: Use | BudgetUse | None, unit: Callable[[int], str]) -> None:
        bar = self.query_one(ProgressBar)
        numbers = self.query_one(".quota-numbers", Label)
        if not isinstance(use, dict):
            bar.display = False
            numbers.update("-")
            return
        used, limit = use.get("used") or 0, use.get("limit")
        if limit:
            bar.display = True
            bar.update(total=limit, progress=min(used, limit))
            numbers.update(f"{unit(used)} of {unit(limit)}")
        else:
            bar.display = False
            numbers.update(f"{unit(used)} used, no limit")
