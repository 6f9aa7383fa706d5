"""The top line: the gateway connection, the applied commit, the repository and pending edits."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from tui import cells
from tui.feed import LIVE


@dataclass(frozen=True)
class Standing:
    gateway: str | None
    feed: str
    """live, connecting, reconnecting, refused (or off without a gateway)."""
    applied: str | None
    policy_state: str | None
    ref: str
    head: str | None
    repo: bool
    pending: int


class StatusLine(Static):
    def show(self, s: Standing) -> None:
        text = Text(" ModelGate ", style="bold reverse")
        if s.gateway is None:
            text.append("  no gateway", style="dim")
        else:
            style = "green" if s.feed == LIVE else "bold yellow"
            text.append(f"  {'●' if s.feed == LIVE else '○'} {s.feed}", style=style)
            text.append(f"  applied {cells.short(s.applied)}")
            if s.policy_state and s.policy_state != "synced":
                text.append(f" {cells.safe(s.policy_state, 40)}", style="bold red")
                if s.policy_state == "rejected" and s.repo:
                    text.append("  R: roll back", style="bold red")
        if s.repo:
            branch = s.ref.removeprefix("refs/heads/")
            text.append(f"  {cells.safe(branch, 40)}@{cells.short(s.head)}")
        else:
            text.append("  read-only", style="dim")
        if s.pending:
            text.append(f"  {s.pending} pending: c", style="bold magenta")
        self.update(text)
