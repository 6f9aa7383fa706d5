"""The Teams tab: teams as a tree by parent, with owner, member keys, limits, and their spend
and token quotas as bars.

The committed policy says which teams exist and how they nest; the gateway's usage report
(`teams[]`) says what each spent and, where the policy limits it, its live use. Without a
repository the report alone draws the tree. USD figures of the report are micro-dollars.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from gateway.payloads import BudgetUse, LimitsUse, TeamSpend, Usage, Use
from policies.models import MICROS_PER_USD, Limits, Policy, Team
from tui import cells
from tui.messages import EditRequested
from tui.widgets.quota_bar import QuotaBar, QuotaName

COLUMNS = ("TEAM", "KEYS", "USD TODAY", "USD MONTH", "TOKENS TODAY", "MODELS", "OWNER")
"""Owner last, as on the Keys tab: at 80 columns it scrolls into view; the detail shows it."""
BARS: tuple[tuple[QuotaName, str], ...] = (
    ("usd_per_day", "USD/day"),
    ("usd_per_month", "USD/month"),
    ("tokens_per_day", "tokens/day"),
    ("tokens_per_month", "tokens/month"),
)
LIMIT_NAMES = {
    "tokens_per_day": "tokens/day",
    "tokens_per_month": "tokens/month",
    "max_concurrency": "conc",
}
INDENT = "  "
BudgetName = Literal["usd_per_day", "usd_per_month"]


@dataclass(frozen=True)
class TeamRow:
    """One team as the tab shows it: from the policy, the usage report, or both."""

    name: str
    depth: int
    team: Team | None
    """As committed; None for a team only the gateway reports."""
    report: TeamSpend | None
    members: tuple[str, ...]


class TeamsView(Vertical):
    """Told the committed policy (`show_policy`) and the gateway's use (`show_usage`)."""

    BINDINGS = [
        Binding("n", "request('team.create')", "New team"),
        Binding("e", "request('team.edit')", "Edit limits"),
        Binding("m", "request('key.move')", "Move a key here"),
    ]

    def __init__(self, *, editable: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.editable = editable
        """False without a repository: the edit bindings are hidden."""
        self.policy: Policy | None = None
        self.policy_error: str | None = None
        self.reports: dict[str, TeamSpend] = {}
        self.rows: list[TeamRow] = []
        self._selected: str | None = None

    def compose(self) -> ComposeResult:
        table: DataTable[str | Text] = DataTable(id="teams-table", cursor_type="row")
        yield table
        with Vertical(id="team-detail"):
            yield Static(id="team-title")
            yield Static(id="team-members")
            for name, label in BARS:
                yield QuotaBar(name, label)

    def on_mount(self) -> None:
        self.query_one("#teams-table", DataTable).add_columns(*COLUMNS)
        self._draw()

    # attributes down ----------------------------------------------------------------------

    def show_policy(self, policy: Policy | None, error: str | None = None) -> None:
        self.policy, self.policy_error = policy, error
        self._draw()

    def show_usage(self, usage: Usage | None) -> None:
        teams = (usage.get("teams") if usage else None) or []
        self.reports = {str(t.get("team")): t for t in teams if isinstance(t, dict)}
        self._draw()

    @property
    def selected(self) -> str | None:
        return self._selected

    # actions ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.editable or action != "request"

    def action_request(self, action: str) -> None:
        subject = None if action == "team.create" else self._selected
        if action == "team.edit" and subject is None:
            self.notify("Select a team first (arrow keys).", severity="warning")
            return
        self.post_message(EditRequested(action, subject))

    @on(DataTable.RowHighlighted, "#teams-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._selected = event.row_key.value
        self._draw_detail()

    # drawing ------------------------------------------------------------------------------

    def _draw(self) -> None:
        table: DataTable[str | Text] = self.query_one("#teams-table", DataTable)
        self.rows = team_tree(self.policy, self.reports)
        at = table.cursor_row
        table.clear()
        for row in self.rows:
            team, live = row.team, _live(row.report)
            owner = team.owner if team else row.report.get("owner") if row.report else None
            table.add_row(
                cells.plain(INDENT * row.depth + row.name, 32),
                Text(str(len(row.members))),
                _budget_cell(_budget(row.report, "usd_per_day")),
                _budget_cell(_budget(row.report, "usd_per_month")),
                _tokens_cell(live.get("tokens_per_day") if live else None),
                cells.plain(cells.models_text(team.models) if team else "?", 20),
                cells.plain(owner or "-", 40),
                key=row.name,
            )
        if table.row_count:
            table.move_cursor(row=min(at, table.row_count - 1))
        else:
            self._selected = None
        self._draw_detail()

    def _draw_detail(self) -> None:
        title = self.query_one("#team-title", Static)
        members = self.query_one("#team-members", Static)
        row = next((r for r in self.rows if r.name == self._selected), None)
        if row is None:
            note = self.policy_error or "No teams yet: press n to create one."
            title.update(Text(cells.message(note), style="red" if self.policy_error else "dim"))
            members.update("")
            for bar in self.query(QuotaBar):
                bar.show(None)
            return
        title.update(_title(row))
        members.update(_members(row))
        live = _live(row.report)
        for bar in self.query(QuotaBar):
            name = bar.quota_name
            if name == "usd_per_day" or name == "usd_per_month":
                bar.show_usd(_budget(row.report, name))
            else:
                bar.show(live.get(name) if live else None)


def team_tree(policy: Policy | None, reports: dict[str, TeamSpend]) -> list[TeamRow]:
    """Every team of the policy and of the report, parents before their sub-teams (by name),
    each with its depth; a parent the tree does not know leaves its team at the top."""
    teams = dict(policy.teams) if policy else {}
    parents: dict[str, str | None] = {name: team.parent for name, team in teams.items()}
    for name, report in reports.items():
        parents.setdefault(name, report.get("parent"))
    children: dict[str | None, list[str]] = {}
    for name, parent in parents.items():
        children.setdefault(parent if parent in parents else None, []).append(name)
    rows: list[TeamRow] = []
    seen: set[str] = set()

    def visit(name: str, depth: int) -> None:
        if name in seen:  # a cycle (only a gateway of another policy could report one)
            return
        seen.add(name)
        rows.append(_row(name, depth, teams.get(name), reports.get(name), policy))
        for child in sorted(children.get(name, [])):
            visit(child, depth + 1)

    for root in sorted(children.get(None, [])):
        visit(root, 0)
    for name in sorted(set(parents) - seen):
        visit(name, 0)
    return rows


def _row(
    name: str, depth: int, team: Team | None, report: TeamSpend | None, policy: Policy | None
) -> TeamRow:
    if policy is not None and team is not None:
        members = tuple(k.id for k in policy.keys if k.team == name)
    else:
        members = tuple(str(k) for k in (report.get("keys") if report else None) or [])
    return TeamRow(name, depth, team, report, members)


def _live(report: TeamSpend | None) -> LimitsUse | None:
    live = report.get("limits") if report else None
    return live if isinstance(live, dict) else None


def _budget(report: TeamSpend | None, name: BudgetName) -> BudgetUse | None:
    """A budget's use in micro-dollars: live from the limiter when the team has it, else
    the request log's spend (no limit)."""
    live = _live(report)
    use = live.get(name) if live else None
    if isinstance(use, dict):
        return use
    spend = report.get("spend") if report else None
    period = spend.get("day" if name == "usd_per_day" else "month") if spend else None
    if not isinstance(period, dict):
        return None
    used = round(float(period.get("cost_usd") or 0) * MICROS_PER_USD)
    return BudgetUse(limit=None, used=used, period=str(period.get("period", "")), resets_at="")


def _budget_cell(use: BudgetUse | None) -> Text:
    if use is None:
        return Text("-")
    used, limit = use.get("used") or 0, use.get("limit")
    if limit:
        return cells.bar(used, limit, 6)
    return Text(cells.money(used / MICROS_PER_USD), style="dim")


def _tokens_cell(use: Use | None) -> Text:
    if not isinstance(use, dict):
        return Text("-")
    return cells.bar(use.get("used") or 0, use.get("limit"), 6)


def _title(row: TeamRow) -> Text:
    team, report = row.team, row.report
    owner = team.owner if team else report.get("owner") if report else None
    parent = team.parent if team else report.get("parent") if report else None
    text = cells.plain(row.name, style="bold")
    text.append(f"  {cells.safe(owner or 'no owner')}")
    if parent:
        text.append(f"  in {cells.safe(parent)}")
    if team is not None:
        text.append(f"  models: {cells.safe(cells.models_text(team.models), 40)}")
    else:
        text.append("  (not in the policy at this commit)", style="dim")
    if report is None:
        text.append("  (no use reported)", style="dim")
    return text


def _members(row: TeamRow) -> Text:
    keys = ", ".join(row.members) if row.members else "none"
    text = Text(f"keys: {cells.safe(keys, 60)}", end="")
    if row.team is not None:
        text.append(f"  limits: {limits_text(row.team.limits)}", style="dim")
    return text


def limits_text(limits: Limits) -> str:
    """`rpm=300 USD/day=$20 · shadow rpm=50`: the team's own limits and budgets, the shadow
    ones (`enforce: shadow`, or a `shadow:` block: reported, never refusing) after a dot."""
    enforced, shadow = limits.split()
    parts = [_values(enforced)] if _values(enforced) else []
    if _values(shadow):
        parts.append("shadow " + _values(shadow))
    return " · ".join(parts) or "none"


def _values(limits: Limits) -> str:
    parts = []
    for name, value in limits.model_dump(exclude_none=True).items():
        if name.startswith("usd_"):
            label = "USD/day" if name == "usd_per_day" else "USD/month"
            parts.append(f"{label}={cells.money(float(value))}")
        else:
            parts.append(f"{LIMIT_NAMES.get(name, name)}={cells.count(value)}")
    return " ".join(parts)
