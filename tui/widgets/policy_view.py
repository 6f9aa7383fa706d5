"""The Policy tab: the applied commit, a rejected one with its error, and the history with
each commit's change in operators' words."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Markdown, Static

from gateway.payloads import PolicyStatus, Status
from tui import cells
from tui.messages import RollbackRequested
from tui.policy_history import HistoryEntry, commit_diff

NO_REPO = "No policy repository: start with --repo PATH to see the history and edit."


class PolicyView(Vertical):
    """Told the gateway status (`show_status`) and the history (`show_history`)."""

    BINDINGS = [
        Binding("s", "app.sync", "Sync gateway"),
        Binding("enter", "focus_diff", "Read diff", show=False),
        Binding("b", "roll_back", "Roll back to this"),
    ]

    def __init__(
        self, repo: Path | None, ref: str, tz: dt.tzinfo | None = None, *, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.repo, self.ref, self.tz = repo, ref, tz
        self.status: Status | None = None
        self.status_error: str | None = None
        self.entries: list[HistoryEntry] = []
        self.head: str | None = None
        self._diff_of: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="policy-status")
        yield DataTable(id="history-table", cursor_type="row")
        with VerticalScroll(id="diff-scroll"):
            yield Static(id="commit-header")
            yield Markdown(id="commit-diff", open_links=False)

    def on_mount(self) -> None:
        self.query_one("#history-table", DataTable).add_columns(
            "", "COMMIT", "DATE", "AUTHOR", "MESSAGE"
        )
        self._draw_status()
        if self.repo is None:
            self.query_one("#commit-diff", Markdown).update(NO_REPO)

    # attributes down ----------------------------------------------------------------------

    def show_status(self, status: Status | None, error: str | None = None) -> None:
        self.status, self.status_error = status, error
        self._draw_status()
        self._draw_history()

    def show_history(self, entries: list[HistoryEntry], head: str | None) -> None:
        self.entries, self.head = entries, head
        self._draw_status()
        self._draw_history()

    # actions ------------------------------------------------------------------------------

    def action_roll_back(self) -> None:
        """Roll back to the highlighted commit (the app plans it and opens the review)."""
        table = self.query_one("#history-table", DataTable)
        if self.repo is None or not table.row_count:
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        if row_key.value is not None:
            self.post_message(RollbackRequested(row_key.value))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "roll_back":
            return self.repo is not None  # watch-only: no binding shown
        return True

    def action_focus_diff(self) -> None:
        self.query_one("#diff-scroll", VerticalScroll).focus()

    @on(DataTable.RowHighlighted, "#history-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        entry = next((e for e in self.entries if e.commit == event.row_key.value), None)
        if entry is not None and entry.commit != self._diff_of and self.repo is not None:
            self._diff_of = entry.commit
            self._load_diff(self.repo, entry)

    @work(thread=True, exclusive=True, group="commit-diff")
    def _load_diff(self, repo: Path, entry: HistoryEntry) -> None:
        text = commit_diff(repo, entry)
        # Subject and author are anyone's words: shown as text, not read as Markdown.
        header = cells.plain(entry.subject, style="bold")
        header.append(f"\n{cells.safe(entry.author)}, {self._date(entry)}, {entry.commit[:12]}")
        self.post_message(self.DiffLoaded(header, text))

    @dataclass
    class DiffLoaded(Message):
        header: Text
        markdown: str

    @on(DiffLoaded)
    def _show_diff(self, message: DiffLoaded) -> None:
        if self.app.is_running:  # not while the app shuts down
            self.query_one("#commit-header", Static).update(message.header)
            self.query_one("#commit-diff", Markdown).update(message.markdown)

    # drawing ------------------------------------------------------------------------------

    def _policy(self) -> PolicyStatus | None:
        return self.status.get("policy") if self.status else None

    def _applied(self) -> str | None:
        policy = self._policy()
        commit = policy.get("commit") if policy else None
        return str(commit) if commit else None

    def _draw_status(self) -> None:
        text = Text()
        policy = self._policy()
        if self.status is None:
            note = self.status_error or "No gateway: the applied commit is unknown."
            text.append(cells.message(note), "dim")
        else:
            state = cells.safe((policy.get("state") if policy else None) or "?", 40)
            applied_at = policy.get("applied_at") if policy else None
            text.append("applied ", style="bold")
            text.append(cells.short(self._applied(), 12), style="bold green")
            text.append(f"  {state}", style="green" if state == "synced" else "red")
            if applied_at:
                text.append(f"  at {cells.safe(applied_at, 40)}")
        if self.repo is not None:
            applied = self._applied()
            marker = "  (not applied)" if applied and self.head and self.head != applied else ""
            text.append(f"\n{cells.safe(self.ref)} at {cells.short(self.head, 12)}{marker}")
        rejected = policy.get("rejected_commit") if policy else None
        if rejected:
            error = policy.get("error") if policy else None
            text.append(f"\nrejected {cells.short(rejected, 12)}: ", "bold red")
            text.append(cells.message(error or ""), style="red")
        self.query_one("#policy-status", Static).update(text)

    def _draw_history(self) -> None:
        table: DataTable[str | Text] = self.query_one("#history-table", DataTable)
        at = table.cursor_row
        table.clear()
        applied = self._applied()
        policy = self._policy()
        rejected = policy.get("rejected_commit") if policy else None
        for entry in self.entries:
            mark = Text("●", "green") if entry.commit == applied else Text(" ")
            if entry.commit == rejected:
                mark = Text("✗", "red")
            table.add_row(
                mark,
                cells.plain(entry.commit[:7]),
                self._date(entry),
                cells.plain(entry.author, 16),
                cells.plain(entry.subject, 100),
                key=entry.commit,
            )
        if table.row_count:
            table.move_cursor(row=min(at, table.row_count - 1))

    def _date(self, entry: HistoryEntry) -> str:
        when = entry.when.astimezone(self.tz) if self.tz else entry.when.astimezone()
        return when.strftime("%Y-%m-%d %H:%M")
