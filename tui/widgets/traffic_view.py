"""The Traffic tab: finished requests, newest first, with rates, errors and latency."""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Label, Sparkline, Static

from tui import cells
from tui.feed import LIVE, FeedState
from tui.traffic import RequestRecord, RowFilter, TrafficFigures

KEEP = 2000
"""Requests kept for the table (filters apply to these)."""
SHOWN = 200
"""Rows drawn at most (the newest that pass the filter)."""
COLUMNS = ("TIME", "KEY", "MODEL", "PROVIDER", "STATUS", "LATENCY", "TOKENS", "COST")
FILTER_HINT = "filter: key:alice model:gpt-* status:5xx (Enter applies, Esc clears)"


class TrafficView(Vertical):
    """Told what arrived (`add_records`) and the figures (`show_figures`); draws them."""

    BINDINGS = [
        Binding("p", "toggle_pause", "Pause/resume"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, tz: dt.tzinfo | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tz = tz
        self.paused = False
        self.row_filter = RowFilter()
        self._records: deque[RequestRecord] = deque(maxlen=KEEP)
        self._held = 0
        """Requests that arrived while paused (drawn on resume)."""
        self._feed = FeedState("off", "no gateway: start with --gateway URL to watch traffic")
        self._figures: TrafficFigures | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="traffic-figures")
        with Horizontal(id="traffic-sparks"):
            yield Label("req/s ", classes="spark-label")
            yield Sparkline([], id="spark-requests")
            yield Label(" p99 ", classes="spark-label")
            yield Sparkline([], id="spark-p99")
        yield Input(placeholder=FILTER_HINT, id="traffic-filter", compact=True)
        table: DataTable[str | Text] = DataTable(id="traffic-table", cursor_type="row")
        yield table
        yield Static(id="traffic-detail")

    def on_mount(self) -> None:
        self.query_one("#traffic-table", DataTable).add_columns(*COLUMNS)
        self._draw_figures()
        self._draw_detail(None)

    # attributes down ----------------------------------------------------------------------

    def add_records(self, records: Iterable[RequestRecord]) -> None:
        batch = list(records)
        if not batch:
            return
        self._records.extend(batch)
        if self.paused:
            self._held += len(batch)
            self._draw_figures()
        else:
            self._draw_table()

    def show_figures(self, figures: TrafficFigures) -> None:
        self._figures = figures
        self.query_one("#spark-requests", Sparkline).data = figures.requests_series
        self.query_one("#spark-p99", Sparkline).data = figures.p99_series
        self._draw_figures()

    def show_feed(self, state: FeedState) -> None:
        self._feed = state
        self._draw_figures()
        if not self.query_one("#traffic-table", DataTable).row_count:
            self._draw_detail(None)

    @property
    def shown_records(self) -> list[RequestRecord]:
        """The records the table shows now, newest first."""
        rows: list[RequestRecord] = []
        for record in reversed(self._records):
            if self.row_filter.matches(record):
                rows.append(record)
                if len(rows) >= SHOWN:
                    break
        return rows

    # actions ------------------------------------------------------------------------------

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self._held = 0
            self._draw_table()
        self._draw_figures()

    def action_focus_filter(self) -> None:
        self.query_one("#traffic-filter", Input).focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#traffic-filter", Input)
        field.value = ""
        self._set_filter("")
        self.query_one("#traffic-table", DataTable).focus()

    @on(Input.Submitted, "#traffic-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self._set_filter(event.value)
        self.query_one("#traffic-table", DataTable).focus()

    @on(Input.Changed, "#traffic-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._set_filter(event.value)

    @on(DataTable.RowHighlighted, "#traffic-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        wanted = event.row_key.value
        found = next((r for r in self._records if str(r.event_id) == wanted), None)
        self._draw_detail(found)

    # drawing ------------------------------------------------------------------------------

    def _set_filter(self, text: str) -> None:
        new = RowFilter.parse(text)
        if new != self.row_filter:
            self.row_filter = new
            self._draw_table()
            self._draw_figures()

    def _draw_table(self) -> None:
        table: DataTable[str | Text] = self.query_one("#traffic-table", DataTable)
        at = table.cursor_row
        table.clear()
        for r in self.shown_records:
            table.add_row(
                cells.clock_time(r.ts, self.tz),
                cells.plain(r.key_id or "-", 16),
                cells.plain(r.model or "-", 18),
                cells.plain(r.provider or "-", 10),
                cells.status_text(r.status, r.error),
                Text(cells.millis(r.latency_ms), justify="right"),
                Text(cells.count(r.tokens), justify="right"),
                Text(cells.money(r.cost_usd), justify="right"),
                key=str(r.event_id),
            )
        if table.row_count:
            table.move_cursor(row=min(at, table.row_count - 1))
        else:
            self._draw_detail(None)

    def _draw_figures(self) -> None:
        f = self._figures
        line = Text()
        if f is not None:
            line.append(f"{f.requests_per_s:.1f} req/s  {cells.count(f.tokens_per_s)} tok/s  ")
            rate = f.error_rate
            style = "red" if rate and rate >= 0.05 else ""
            line.append(f"errors {cells.percent(rate)}", style=style)
            line.append(f"  p50 {cells.millis(f.p50_ms)}  p99 {cells.millis(f.p99_ms)}  ")
        state = self._feed.state
        if self.paused:
            line.append(f"PAUSED (+{self._held})", style="bold yellow")
        elif state == LIVE:
            line.append("● live", style="bold green")
        else:
            line.append(f"○ {state}", style="bold yellow" if state != "off" else "dim")
        if self.row_filter.active:
            line.append(f"  [{len(self.shown_records)} shown]", style="cyan")
        self.query_one("#traffic-figures", Static).update(line)

    def _draw_detail(self, record: RequestRecord | None) -> None:
        detail = self.query_one("#traffic-detail", Static)
        if record is None:
            note = "" if self._feed.state == LIVE else self._feed.detail
            detail.update(cells.plain(note, style="dim"))
            return
        target = cells.safe(record.target or "-")
        text = Text(f"{cells.safe(record.request_id)}  → {target}  ttfb ")
        text.append(cells.millis(record.ttfb_ms))
        text.append(f"  in {record.prompt_tokens} out {record.completion_tokens}")
        text.append(f"  cost {cells.money(record.cost_usd)}")
        text.append("  stream" if record.stream else "")
        if record.error:
            text.append(f"  {cells.safe(record.error)}", style="red")
        detail.update(text)
