"""What every edit form shares: labelled one-line fields, an error line, Save and Cancel.

A form returns a policy edit (tui.policy_ops.Edit) or None; it checks only what the fields
themselves must be (numbers, dates). Whether the result is a valid policy is decided by the
review screen, exactly as `modelgate policy check` decides it.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Static

from tui import cells
from tui.policy_ops import Edit

LIMIT_FIELDS = (
    ("rpm", "requests/min"),
    ("tpm", "tokens/min"),
    ("max_concurrency", "in flight"),
    ("tokens_per_day", "tokens/day"),
    ("tokens_per_month", "tokens/month"),
)


class FormScreen(ModalScreen[Edit | None]):
    """Subclasses give `heading`, `form_fields()` and `build()`."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Save"),
    ]
    heading = ""

    def form_fields(self) -> list[tuple[str, Input]]:
        raise NotImplementedError

    def build(self) -> Edit:
        """The edit the fields describe; raises ValueError with what to fix."""
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form"):
            yield Label(cells.plain(self.heading), classes="dialog-title")
            with Grid(classes="form-grid"):
                for label, field in self.form_fields():
                    yield Label(label, classes="form-label")
                    yield field
            yield Static("", id="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Save  ctrl+s", variant="primary", id="save", compact=True)
                yield Button("Cancel  esc", id="cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        fields = [f for f in self.query(Input) if not f.disabled]
        if fields:
            fields[0].focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def action_submit(self) -> None:
        try:
            edit = self.build()
        except ValueError as exc:
            self.query_one("#form-error", Static).update(Text(f"✗ {cells.message(exc)}"))
            return
        self.dismiss(edit)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    # field helpers ------------------------------------------------------------------------

    def text(self, field_id: str) -> str:
        return self.query_one(f"#{field_id}", Input).value.strip()

    def number(self, field_id: str, label: str) -> int | None:
        raw = self.text(field_id).replace("_", "").replace(",", "")
        if not raw:
            return None
        if not raw.isdigit():
            raise ValueError(f"{label} must be a whole number of 0 or more (or empty: no limit)")
        return int(raw)

    def limits(self) -> dict[str, int | None]:
        """Every limit field: a number, or None where it is empty."""
        return {name: self.number(f"f-{name}", label) for name, label in LIMIT_FIELDS}


def field(field_id: str, value: object = None, placeholder: str = "", **kw: object) -> Input:
    """A compact one-line input (fits 80x24 forms)."""
    text = "" if value is None else str(value)
    return Input(text, placeholder=placeholder, id=field_id, compact=True, **kw)  # type: ignore[arg-type]
