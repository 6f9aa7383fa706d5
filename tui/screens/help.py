"""The key bindings, tab by tab, and the traffic filter's syntax."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Static

HELP = """\
[b]Everywhere[/]
  1 to 5     the Traffic, Keys, Routes, Policy and Teams tabs
  c          review the pending edits: diff, policy check, commit
  ctrl+r     refresh now     ?  this help     q  quit
  R          roll back a rejected commit to the one the gateway serves
[b]Traffic[/]    p pause/resume   / filter   esc clear the filter
[b]Keys[/]       n new   e edit   d disable/enable   r rotate
[b]Routes[/]     n new route   t new tier   e edit the highlighted row
[b]Policy[/]     s sync now   b roll back to this commit   up/down: its diff
[b]Teams[/]      n new team   e edit limits and budgets   m move a key here
[b]Forms[/]      ctrl+s save   esc cancel   tab next field
[b]Review[/]     ctrl+s commit   esc keep editing   ctrl+d discard

Filter: key:alice model:gpt-* status:5xx (globs; status takes 429, 4xx,
ok, err); a bare word matches the key, model or provider.

Every edit is checked as `modelgate policy check` would before it can be
committed. Commit on the watched ref, or name a new branch for a pull
request. A new key's secret is shown once, right after its commit.\
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Label("ModelGate terminal UI: help", classes="dialog-title")
            yield Static(HELP)
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)
