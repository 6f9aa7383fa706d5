"""The Traffic tab against a real gateway: live rows, filters, pause, figures, reconnection."""

from __future__ import annotations

import asyncio

from textual.widgets import Input, TabbedContent

from tests.conftest import Deployment
from tests.support.gateway_process import GatewayProcess
from tests.tui.conftest import chat, fill, make_app, wait_until
from tui.feed import LIVE, RECONNECTING
from tui.widgets.traffic_view import TrafficView


async def test_requests_appear_as_they_finish_and_filter_and_pause(
    tui_deployment: Deployment,
) -> None:
    d = tui_deployment
    app = make_app(d)
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(TrafficView)
        await wait_until(pilot, lambda: app.feed_state.state == LIVE, "the live stream")
        assert (await chat(d, "alice")).status_code == 200
        assert (await chat(d, "bob")).status_code == 200
        assert (await chat(d, "alice", "secret-model")).status_code == 403  # not alice's
        await wait_until(pilot, lambda: len(view.shown_records) == 3, "three rows")
        newest = view.shown_records[0]
        assert (newest.key_id, newest.model, newest.status) == ("alice", "secret-model", 403)
        assert view.shown_records[2].tokens > 0

        await pilot.press("slash")
        await fill(pilot, "#traffic-filter", "key:alice")
        assert [r.key_id for r in view.shown_records] == ["alice", "alice"]
        await pilot.press("slash")
        await fill(pilot, "#traffic-filter", "status:4xx")
        assert [r.status for r in view.shown_records] == [403]
        await pilot.press("escape")
        assert len(view.shown_records) == 3
        await pilot.press("slash", *"key:bo", "q", "c", "2")  # typed, not taken as commands
        assert app.query_one("#traffic-filter", Input).value == "key:boqc2"
        assert app.query_one(TabbedContent).active == "traffic" and app.is_running
        await pilot.press("escape")

        await pilot.press("p")
        assert view.paused
        await chat(d, "bob")
        await wait_until(pilot, lambda: len(app.stats._records) >= 4, "the request counted")
        assert len(view.shown_records) == 4  # kept, but the table is not redrawn
        table = app.query_one("#traffic-table")
        assert table.row_count == 3  # type: ignore[attr-defined]
        await pilot.press("p")
        assert table.row_count == 4  # type: ignore[attr-defined]

        def counted() -> float:
            return sum(view._figures.requests_series) if view._figures else 0

        await wait_until(pilot, lambda: counted() == 4, "figures over four requests")
        figures = view._figures
        assert figures is not None and figures.requests_per_s > 0
        assert figures.error_rate == 0.25 and figures.p99_ms is not None
        figures_line = str(app.query_one("#traffic-figures").render())
        assert "req/s" in figures_line and "errors 25.0%" in figures_line


async def test_survives_a_gateway_restart_on_the_same_port(tui_deployment: Deployment) -> None:
    d = tui_deployment
    app = make_app(d)
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(TrafficView)
        await wait_until(pilot, lambda: app.feed_state.state == LIVE, "the live stream")
        await chat(d)
        await wait_until(pilot, lambda: len(view.shown_records) == 1, "the first request")

        await asyncio.to_thread(d.gateway.stop)
        await wait_until(pilot, lambda: app.feed_state.state == RECONNECTING, "reconnecting")
        line = str(app.query_one("#status-line").render())
        assert "reconnecting" in line

        restarted = GatewayProcess(d.repo.path, d.gateway.state_dir, port=d.gateway.port)
        try:
            await asyncio.to_thread(restarted.start)
            await wait_until(pilot, lambda: app.feed_state.state == LIVE, "live again", 20)
            await chat(d)
            await wait_until(pilot, lambda: len(view.shown_records) == 2, "a request after it")
            assert len({r.request_id for r in view.shown_records}) == 2
        finally:
            await asyncio.to_thread(restarted.stop)
