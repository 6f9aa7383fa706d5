"""`modelgate tui`: watch a gateway and edit its policy repository from the terminal.

The app owns the IO (workers) and the draft of pending edits; the tabs' views are told what
to show (attributes down) and ask for edits by message (messages up). Either half works
alone: without a gateway it edits the repository, without a repository it only watches.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen
from textual.widgets import Footer, TabbedContent, TabPane

from gateway.payloads import Status
from policies.loader import load_policy_at
from policies.models import Policy
from policies.problems import PolicyInvalid, PolicyRepoError
from tui import cells
from tui.client import AdminApi, AdminError
from tui.editing import EditFlow
from tui.feed import FeedGap, FeedState, follow_events
from tui.messages import EditRequested, GatewayPolled, RepoLoaded, RollbackRequested
from tui.policy_history import head_of, read_history
from tui.rollback_flow import RollbackFlow
from tui.screens.confirm import ConfirmScreen
from tui.screens.help import HelpScreen
from tui.traffic import RequestRecord, TrafficStats
from tui.widgets.keys_view import KeysView
from tui.widgets.policy_view import PolicyView
from tui.widgets.routes_view import RoutesView
from tui.widgets.status_line import Standing, StatusLine
from tui.widgets.teams_view import TeamsView
from tui.widgets.traffic_view import TrafficView

APP_ONLY = {"show_tab", "review", "help", "quit", "refresh", "sync", "roll_back_rejected"}
"""Actions of the main screen, not of dialogs."""


@dataclass(frozen=True)
class TuiOptions:
    repo: Path | None
    """The policy repository to edit; None watches only."""
    ref: str = "refs/heads/main"
    poll_s: float = 2.0
    """Seconds between polls of the gateway's status and usage."""
    repo_poll_s: float = 1.0
    """Seconds between looks at the watched ref (a commit by anyone shows up)."""


class ModelGateApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "ModelGate"
    BINDINGS = [
        Binding("1", "show_tab('traffic')", "Traffic", show=False),
        Binding("2", "show_tab('keys')", "Keys", show=False),
        Binding("3", "show_tab('routes')", "Routes", show=False),
        Binding("4", "show_tab('policy')", "Policy", show=False),
        Binding("5", "show_tab('teams')", "Teams", show=False),
        Binding("c", "review", "Commit"),
        Binding("R", "roll_back_rejected", "Roll back rejected"),
        Binding("question_mark,f1", "help", "Help"),
        Binding("ctrl+r", "refresh", "Refresh", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        options: TuiOptions,
        client: AdminApi | None = None,
        *,
        clock: Callable[[], float] = time.time,
        tz: dt.tzinfo | None = None,
        today: dt.date | None = None,
    ) -> None:
        super().__init__()
        self.options, self.client, self.clock = options, client, clock
        self.tz, self.today = tz, today
        self.stats = TrafficStats()
        self.edits = EditFlow(self, options.repo, options.ref)
        self.rollback = RollbackFlow(self, options.repo, options.ref)
        self.status: Status | None = None
        self.policy: Policy | None = None
        self.repo_head: str | None = None
        self.feed_state = FeedState("off") if client is None else FeedState("connecting")
        self._incoming: list[RequestRecord] = []

    def compose(self) -> ComposeResult:
        self.traffic_view = TrafficView(self.tz, id="traffic-view")
        editable = self.options.repo is not None
        self.keys_view = KeysView(self.today, editable=editable, id="keys-view")
        self.routes_view = RoutesView(editable=editable, id="routes-view")
        self.teams_view = TeamsView(editable=editable, id="teams-view")
        self.policy_view = PolicyView(
            self.options.repo, self.options.ref, self.tz, id="policy-view"
        )
        yield StatusLine(id="status-line")
        with TabbedContent(initial="traffic", id="tabs"):
            with TabPane("1 Traffic", id="traffic"):
                yield self.traffic_view
            with TabPane("2 Keys", id="keys"):
                yield self.keys_view
            with TabPane("3 Routes", id="routes"):
                yield self.routes_view
            with TabPane("4 Policy", id="policy"):
                yield self.policy_view
            with TabPane("5 Teams", id="teams"):
                yield self.teams_view
        yield Footer()

    def on_mount(self) -> None:
        self._draw_status_line()
        if self.client is not None:
            self.traffic_view.show_feed(self.feed_state)
            self._follow_feed(self.client)
            self.set_interval(0.25, self._flush_records)
            self.set_interval(1.0, self._show_figures)
            self.set_interval(self.options.poll_s, self._poll_gateway)
            self._poll_gateway()
        if self.options.repo is not None:
            self.set_interval(self.options.repo_poll_s, self._watch_repo)
            self._watch_repo(force=True)
        self.query_one("#traffic-table").focus()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification as plain text (`markup` is ignored): messages carry names and
        errors from clients, the gateway and the repository."""
        super().notify(
            cells.message(message),
            title=cells.safe(title, 80),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    async def on_unmount(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    # views --------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """False once the app is shutting down (late timers and messages do nothing then)."""
        return self.is_running and self.traffic_view.is_attached

    def _draw_status_line(self) -> None:
        if not self.alive:
            return
        policy = self.status.get("policy") if self.status else None
        self.query_one(StatusLine).show(
            Standing(
                gateway=self.client.url if self.client else None,
                feed=self.feed_state.state,
                applied=policy.get("commit") if policy else None,
                policy_state=policy.get("state") if policy else None,
                ref=self.options.ref,
                head=self.repo_head,
                repo=self.options.repo is not None,
                pending=self.edits.pending,
            )
        )

    def draft_changed(self) -> None:
        """The edit flow's pending edits changed (the status line and `c` show them)."""
        self._draw_status_line()
        self.refresh_bindings()

    # actions ------------------------------------------------------------------------------

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        focus = {"traffic": "#traffic-table", "keys": "#keys-table"}
        focus |= {"routes": "#routes-table", "policy": "#history-table", "teams": "#teams-table"}
        self.query_one(focus[tab]).focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_review(self) -> None:
        self.edits.review()

    def action_refresh(self) -> None:
        if self.client is not None:
            self._poll_gateway()
        if self.options.repo is not None:
            self._watch_repo(force=True)

    def action_sync(self) -> None:
        if self.client is None:
            self.notify("No gateway: start with --gateway URL to sync it.", severity="warning")
            return
        self.sync_gateway()

    def action_roll_back_rejected(self) -> None:
        """Roll the watched ref back to the commit the gateway serves (reviewed first)."""
        serving = self._rejected_rollback_target()
        if serving is not None:
            self.rollback.start(serving)

    def _rejected_rollback_target(self) -> str | None:
        """The applied commit, while the gateway rejects a later one and a repo is open."""
        policy = self.status.get("policy") if self.status else None
        if self.options.repo is None or not policy or policy.get("state") != "rejected":
            return None
        applied = policy.get("commit")
        return str(applied) if applied else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if isinstance(self.screen, ModalScreen) and action in APP_ONLY:
            return False  # a key pressed in a dialog must not act on the tabs behind it
        if action == "roll_back_rejected":
            return self._rejected_rollback_target() is not None
        if action == "review":
            return self.edits.pending > 0
        if action == "sync":
            return self.client is not None
        return True

    async def action_quit(self) -> None:
        pending = self.edits.pending
        if not pending:
            self.exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit()

        question = f"{pending} edit(s) are not committed. Quit and throw them away?"
        self.push_screen(ConfirmScreen("Quit", question, "Quit", "Stay"), answered)

    @on(EditRequested)
    def _edit_requested(self, message: EditRequested) -> None:
        self.edits.request(message, self.policy)

    @on(RollbackRequested)
    def _rollback_requested(self, message: RollbackRequested) -> None:
        self.rollback.start(message.commit)

    # the gateway --------------------------------------------------------------------------

    @work(exclusive=True, group="feed")
    async def _follow_feed(self, client: AdminApi) -> None:
        async for item in follow_events(client):
            if isinstance(item, RequestRecord):
                self._incoming.append(item)
            elif isinstance(item, FeedState) and self.alive:
                self.feed_state = item
                self.traffic_view.show_feed(item)
                self._draw_status_line()
            elif isinstance(item, FeedGap):
                self.notify(item.reason, title="Traffic", severity="warning", timeout=4)

    def _flush_records(self) -> None:
        if self._incoming and self.alive:
            batch, self._incoming = self._incoming, []
            self.stats.add(batch)
            self.traffic_view.add_records(batch)

    def _show_figures(self) -> None:
        if self.alive:
            self.traffic_view.show_figures(self.stats.figures(self.clock()))

    @work(exclusive=True, group="poll")
    async def _poll_gateway(self) -> None:
        assert self.client is not None
        try:
            status, usage = await asyncio.gather(self.client.status(), self.client.usage())
        except AdminError as exc:
            self.post_message(GatewayPolled(None, None, str(exc)))
            return
        self.post_message(GatewayPolled(status, usage))

    @work(exclusive=True, group="sync")
    async def sync_gateway(self) -> None:
        """Ask the gateway to apply the watched ref now, then show where it stands."""
        if self.client is None:
            return
        try:
            await self.client.sync()
        except AdminError as exc:
            self.notify(f"Sync failed: {exc}", severity="warning", timeout=6)
        self._poll_gateway()

    @on(GatewayPolled)
    def _gateway_polled(self, message: GatewayPolled) -> None:
        if not self.alive:
            return
        if message.error is not None:
            self.policy_view.show_status(None, message.error)
            return
        self.status = message.status
        self.keys_view.show_usage(message.usage)
        self.teams_view.show_usage(message.usage)
        self.routes_view.show_status(message.status)
        self.policy_view.show_status(message.status)
        self._draw_status_line()
        self.refresh_bindings()  # `R` is offered only while a commit is rejected

    # the repository -----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="repo")
    def _watch_repo(self, force: bool = False) -> None:
        repo, ref = self.options.repo, self.options.ref
        assert repo is not None
        head = head_of(repo, ref)
        if head == self.repo_head and not force:
            return
        try:
            history = read_history(repo, ref)
            _, policy = load_policy_at(repo, head or ref)
        except PolicyInvalid as exc:
            error = f"The policy at {ref} ({(head or '')[:7]}) does not validate:\n{exc}"
            self.post_message(RepoLoaded(head, None, history, error))
            return
        except PolicyRepoError as exc:
            self.post_message(RepoLoaded(head, None, [], str(exc)))
            return
        self.post_message(RepoLoaded(head, policy, history))

    @on(RepoLoaded)
    def _repo_loaded(self, message: RepoLoaded) -> None:
        if not self.alive:
            return
        self.repo_head = message.head
        self.policy = message.policy
        self.keys_view.show_policy(message.policy, message.error)
        self.teams_view.show_policy(message.policy, message.error)
        self.routes_view.show_policy(message.policy, message.error)
        self.policy_view.show_history(message.history, message.head)
        self._draw_status_line()
