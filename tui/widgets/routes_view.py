"""The Routes tab: routes (targets, strategy, weights), tiers, providers and credential state.

Credentials appear as their references (env:NAME, file:NAME), never values; which of them
are cooling down comes from the gateway's status.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Label

from gateway.payloads import CredentialStatus, Status
from policies.models import Policy, Route, WeightedTarget
from tui import cells
from tui.messages import EditRequested
from tui.policy_ops import DEFAULT_TIER


class RoutesView(VerticalScroll):
    """Told the committed policy (`show_policy`) and the gateway's status (`show_status`)."""

    BINDINGS = [
        Binding("n", "new_route", "New route"),
        Binding("t", "new_tier", "New tier"),
        Binding("e", "edit", "Edit"),
    ]

    def __init__(self, *, editable: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.editable = editable
        """False without a repository: the edit bindings are hidden."""
        self.policy: Policy | None = None
        self.status: Status | None = None

    def compose(self) -> ComposeResult:
        yield Label("Routes", classes="section")
        yield DataTable(id="routes-table", cursor_type="row")
        yield Label("Limits (tiers)", classes="section")
        yield DataTable(id="tiers-table", cursor_type="row")
        yield Label("Providers and credentials", classes="section")
        yield DataTable(id="providers-table", cursor_type="row")
        yield Label("", id="routes-note")

    def on_mount(self) -> None:
        self._table("routes").add_columns("ROUTE", "STRATEGY", "STATE", "TARGETS")
        self._table("tiers").add_columns("TIER", "LIMITS", "KEYS")
        self._table("providers").add_columns("PROVIDER", "TYPE", "CREDENTIAL", "STATE")
        self._draw()

    # attributes down ----------------------------------------------------------------------

    def show_policy(self, policy: Policy | None, error: str | None = None) -> None:
        self.policy = policy
        note = cells.message(error or "")
        self.query_one("#routes-note", Label).update(Text(note, style="red"))
        self._draw()

    def show_status(self, status: Status | None) -> None:
        self.status = status
        self._draw()

    # actions ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.editable or action not in ("new_route", "new_tier", "edit")

    def action_new_route(self) -> None:
        self.post_message(EditRequested("route.create"))

    def action_new_tier(self) -> None:
        self.post_message(EditRequested("tier.create"))

    def action_edit(self) -> None:
        focused = self.screen.focused
        table = focused if isinstance(focused, DataTable) else self._table("routes")
        if table.id == "providers-table":
            self.notify("Providers are edited in providers.yaml by pull request.", timeout=4)
            return
        if not table.row_count:
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        kind = "tier" if table.id == "tiers-table" else "route"
        self.post_message(EditRequested(f"{kind}.edit", row_key.value))

    # drawing ------------------------------------------------------------------------------

    def _table(self, name: str) -> DataTable[str | Text]:
        table: DataTable[str | Text] = self.query_one(f"#{name}-table", DataTable)
        return table

    def _draw(self) -> None:
        policy, status = self.policy, self.status
        unavailable = (status.get("unavailable_routes") if status else None) or {}
        routes = self._table("routes")
        routes.clear()
        for name, route in policy.routes.items() if policy else ():
            why = unavailable.get(name)
            state = cells.plain(why, style="red") if why else Text("ok", style="green")
            routes.add_row(
                cells.plain(name), route.strategy, state, cells.plain(_targets(route)), key=name
            )
        if policy is None:
            for name, why in sorted(unavailable.items()):
                routes.add_row(cells.plain(name), "?", cells.plain(why, style="red"), "?", key=name)
        tiers = self._table("tiers")
        tiers.clear()
        if policy is not None:
            users = _tier_users(policy)
            tiers.add_row(
                DEFAULT_TIER,
                cells.limits_text(policy.limits.default),
                str(users.get(None, 0)),
                key=DEFAULT_TIER,
            )
            for name, limits in policy.limits.tiers.items():
                limits_text = cells.limits_text(limits)
                tiers.add_row(cells.plain(name), limits_text, str(users.get(name, 0)), key=name)
        self._draw_providers(policy, (status.get("credentials") if status else None) or [])

    def _draw_providers(self, policy: Policy | None, states: list[CredentialStatus]) -> None:
        table = self._table("providers")
        table.clear()
        by_ref = {(s.get("provider"), s.get("credential")): s for s in states}
        shown: set[tuple[str | None, str | None]] = set()
        for name, provider in policy.providers.items() if policy else ():
            refs = [str(c) for c in provider.credentials] or ["(none)"]
            for index, ref in enumerate(refs):
                shown.add((name, ref))
                first = index == 0
                table.add_row(
                    cells.plain(name if first else ""),
                    provider.type if first else "",
                    cells.plain(ref),
                    _credential_state(by_ref.get((name, ref))),
                    key=f"{name}\0{ref}",
                )
        for pair, state in sorted(by_ref.items(), key=lambda item: str(item[0])):
            if pair not in shown:  # without --repo, the gateway's view alone
                table.add_row(
                    cells.plain(pair[0]), "?", cells.plain(pair[1]), _credential_state(state)
                )


def _targets(route: Route) -> str:
    parts = []
    for target in route.targets:
        if isinstance(target, WeightedTarget):
            parts.append(f"{target.target}={target.weight:g}")
        else:
            parts.append(target)
    return ", ".join(parts)


def _tier_users(policy: Policy) -> dict[str | None, int]:
    users: dict[str | None, int] = {}
    for key in policy.keys:
        tier = key.tier if key.tier in policy.limits.tiers else None
        users[tier] = users.get(tier, 0) + 1
    return users


def _credential_state(state: CredentialStatus | None) -> Text:
    if state is None:
        return Text("ok", style="green")
    kind = str(state.get("state") or "ok")
    if kind == "ok":
        return Text("ok", style="green")
    kind, reason = cells.safe(kind, 40), cells.safe(state.get("reason") or "")
    if kind == "cooling":
        seconds = state.get("cooling_down_s")
        seconds = seconds if isinstance(seconds, int | float) else 0
        return Text(f"cooling {seconds:g}s {reason}".strip(), style="yellow")
    return Text(f"{kind}: {reason}".strip(": "), style="red")
