"""A new key's secret, shown once: copy it, store it, and it is gone from the UI."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, Static

from tui import cells


class SecretScreen(ModalScreen[None]):
    """Holds the only copy of the secret the UI keeps; dismissing it drops the secret."""

    AUTO_FOCUS = "#done"
    BINDINGS = [
        Binding("c", "copy", "Copy"),
        Binding("enter,escape", "done", "Stored it"),
    ]

    def __init__(self, key_id: str, secret: str, action: str = "created") -> None:
        super().__init__()
        self.key_id, self._secret, self.action = key_id, secret, action

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog secret"):
            title = f"Key {self.key_id} {self.action}: its secret"
            yield Label(cells.plain(title), classes="dialog-title")
            yield Static(Text(self._secret, style="bold"), id="secret-value")
            yield Static(
                "This is the only time it is shown: only its SHA-256 hash was committed. "
                "Give it to the key's owner now.",
                classes="question",
            )
            with Horizontal(classes="buttons"):
                yield Button("Copy  c", variant="primary", id="copy", compact=True)
                yield Button("I have stored it  enter", id="done", compact=True)
        yield Footer()

    @on(Button.Pressed, "#copy")
    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self._secret)
        self.notify("Copied to the clipboard (where the terminal supports it).", timeout=3)

    @on(Button.Pressed, "#done")
    def action_done(self) -> None:
        self._secret = ""
        self.dismiss(None)
