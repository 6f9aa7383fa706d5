"""The key bindings, tab by tab, and the traffic filter's syntax."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Markdown

HELP = """\
| keys | everywhere |
|---|---|
| `1` `2` `3` `4` | Traffic, Keys, Routes, Policy |
| `c` | review the pending edits: diff, check, commit |
| `ctrl+r` | refresh now · `?` this help · `q` quit |

| keys | in a tab |
|---|---|
| `p` `/` `esc` | Traffic: pause, filter, clear the filter |
| `n` `e` `d` `r` | Keys: new, edit, disable/enable, rotate |
| `n` `t` `e` | Routes: new route, new tier, edit the row |
| `s` `enter` | Policy: sync the gateway now, read the diff |

Filter: `key:alice model:gpt-* status:5xx` (globs; status takes 429, 4xx, ok, err); a bare
word matches key, model or provider.

Every edit is checked as `modelgate policy check` would before it can be committed; the
review shows the diff and lets you commit on the watched ref or on a new branch for a pull
request. A new key's secret is shown once, right after its commit.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Label("ModelGate terminal UI: help  (esc closes)", classes="dialog-title")
            with VerticalScroll():
                yield Markdown(HELP)

    def action_close(self) -> None:
        self.dismiss(None)
