"""The Keys tab: every key with owner, tier, models, expiry, and its quota use as bars."""

from __future__ import annotations

import datetime as dt

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from gateway.payloads import KeyUsage, Usage
from policies.models import Key, Limits, Policy
from tui import cells
from tui.messages import EditRequested
from tui.widgets.quota_bar import QUOTAS, QuotaBar

COLUMNS = ("KEY", "STATE", "TIER", "MODELS", "EXPIRES", "TOKENS TODAY", "OWNER")
"""Owner last: at 80 columns it scrolls into view; the detail line shows it too."""


class KeysView(Vertical):
    """Told the committed policy (`show_policy`) and the gateway's use (`show_usage`)."""

    BINDINGS = [
        Binding("n", "request('key.create')", "New key"),
        Binding("e", "request('key.edit')", "Edit"),
        Binding("d", "request('key.toggle')", "Disable/enable"),
        Binding("r", "request('key.rotate')", "Rotate"),
    ]

    def __init__(
        self, today: dt.date | None = None, *, editable: bool = True, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.today = today
        self.editable = editable
        """False without a repository: the edit bindings are hidden."""
        self.policy: Policy | None = None
        self.policy_error: str | None = None
        self.usage: dict[str, KeyUsage] = {}
        self._selected: str | None = None

    def compose(self) -> ComposeResult:
        table: DataTable[str | Text] = DataTable(id="keys-table", cursor_type="row")
        yield table
        with Vertical(id="key-detail"):
            yield Static(id="key-title")
            for name, label in QUOTAS:
                yield QuotaBar(name, label)

    def on_mount(self) -> None:
        self.query_one("#keys-table", DataTable).add_columns(*COLUMNS)
        self._draw()

    # attributes down ----------------------------------------------------------------------

    def show_policy(self, policy: Policy | None, error: str | None = None) -> None:
        self.policy, self.policy_error = policy, error
        self._draw()

    def show_usage(self, usage: Usage | None) -> None:
        keys = (usage.get("keys") if usage else None) or []
        self.usage = {str(k.get("key_id")): k for k in keys if isinstance(k, dict)}
        self._draw()

    @property
    def selected(self) -> str | None:
        return self._selected

    def key(self, key_id: str | None) -> Key | None:
        if self.policy is None or key_id is None:
            return None
        return next((k for k in self.policy.keys if k.id == key_id), None)

    # actions ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.editable or action != "request"

    def action_request(self, action: str) -> None:
        subject = None if action == "key.create" else self._selected
        if action != "key.create" and subject is None:
            self.notify("Select a key first (arrow keys).", severity="warning")
            return
        self.post_message(EditRequested(action, subject, self.key(subject)))

    @on(DataTable.RowHighlighted, "#keys-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._selected = event.row_key.value
        self._draw_detail()

    # drawing ------------------------------------------------------------------------------

    def _ids(self) -> list[str]:
        ids = [k.id for k in self.policy.keys] if self.policy else []
        return ids + sorted(set(self.usage) - set(ids))

    def _draw(self) -> None:
        table: DataTable[str | Text] = self.query_one("#keys-table", DataTable)
        today = self.today or dt.datetime.now(dt.UTC).date()
        at = table.cursor_row
        table.clear()
        for key_id in self._ids():
            key, use = self.key(key_id), self.usage.get(key_id)
            table.add_row(
                cells.plain(key_id, 32),
                cells.key_state(key, use, today),
                cells.plain((key.tier or "(default)") if key else "?", 24),
                cells.plain(cells.models_text(key.models) if key else "?", 24),
                cells.plain(_expires(key, use), 12),
                _tokens_today(use),
                cells.plain((key.owner if key else use.get("owner") if use else None) or "-", 40),
                key=key_id,
            )
        if table.row_count:
            table.move_cursor(row=min(at, table.row_count - 1))
        else:
            self._selected = None
        self._draw_detail()

    def _draw_detail(self) -> None:
        key_id = self._selected
        title = self.query_one("#key-title", Static)
        use = self.usage.get(key_id) if key_id else None
        if key_id is None:
            note = cells.message(self.policy_error or "No keys yet: press n to create one.")
            title.update(Text(note, style="red" if self.policy_error else "dim"))
        else:
            key = self.key(key_id)
            owner = key.owner if key else use.get("owner") if use else None
            text = cells.plain(key_id, style="bold")
            text.append(f"  {cells.safe(owner or 'no owner')}")
            if key is not None and key.limits is not None:
                text.append(f"  own limits: {own_limits_text(key.limits)}")
            if use is None:
                text.append("  (no use reported: no gateway, or not applied yet)", style="dim")
            title.update(text)
        for quota in self.query(QuotaBar):
            quota.show(use.get(quota.quota_name) if use else None)


def own_limits_text(limits: Limits) -> str:
    """`rpm=100 · shadow rpm=50`: a key's own limits, the shadow ones (`enforce: shadow`, or
    a `shadow:` block: reported, never refusing) after a dot."""
    enforced, shadow = limits.split()
    on = cells.limits_text(enforced)
    if shadow == Limits():
        return on
    shadowed = "shadow " + cells.limits_text(shadow)
    return shadowed if on == "-" else f"{on} · {shadowed}"


def _tokens_today(use: KeyUsage | None) -> Text:
    if use is None:
        return Text("-")
    day = use.get("tokens_per_day")
    return cells.bar(day.get("used", 0), day.get("limit"), 6) if day else cells.bar(0, None, 6)


def _expires(key: Key | None, use: KeyUsage | None) -> str:
    if key is not None:
        return key.expires.isoformat() if key.expires else "-"
    value = use.get("expires") if use else None
    return str(value) if value else "-"
