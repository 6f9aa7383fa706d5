"""Client strings are never interpreted: not as Rich markup by the TUI, not as line breaks or
fields by the logs, not as rows or terminal control by `modelgate usage`.

A model name that is Rich markup (`[/]`: a closing tag with nothing to close) crashed
`modelgate tui` when its event arrived, and again at every start while the gateway kept the
event in its replay ring. The requests here are written on a raw socket, so nothing between
the attacker and the gateway cleans them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from typing import Any

from gateway.commands.usage_cmd import format_table
from gateway.logs import JsonFormatter, TextFormatter, access_batch_record
from gateway.usage.request_log import DEFAULT_FILE, RequestLog
from gateway.usage.request_report import SummaryRow
from policies.diff_words import code
from tests.conftest import Deployment
from tests.support.gateway_process import GatewayProcess
from tests.support.raw_client import post_json
from tests.tui.conftest import make_app, screen_text, screen_texts, wait_until
from tui.feed import LIVE

MARKUP_MODELS = ("[/]", "[red]x[/red]", "[@click=app.quit]")
"""Valid model names (no route has them: each is a 404) that are Rich markup."""
CONTROL = "\x1b[2J\x1b]0;owned\x07\r\n2026-01-01T00:00:00 INFO    modelgate.access: forged"
FORGED_ID = 'x" status=200 key_id=admin'
"""A printable request id (the gateway keeps it) that would add fields to a text line."""


def raw_chat(gateway: GatewayProcess, key: str, model: str, request_id: str = "") -> int:
    """One chat completion written byte by byte; the status code of the answer."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    headers = [(b"authorization", f"Bearer {key}".encode())]
    if request_id:
        headers.append((b"x-request-id", request_id.encode()))
    return post_json(gateway.port, "/v1/chat/completions", headers, body).status


async def test_markup_model_names_do_not_crash_the_tui_live_or_replayed(
    deployment: Deployment,
) -> None:
    d = deployment
    app = make_app(d, with_repo=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.feed_state.state == LIVE, "the live stream")
        for n, model in enumerate(MARKUP_MODELS):
            status = raw_chat(d.gateway, d.keys["alice"], model, f"[/]-{n}")
            assert status == 404, model
        assert raw_chat(d.gateway, d.keys["alice"], "gpt" + CONTROL) == 400
        view = app.traffic_view
        await wait_until(pilot, lambda: len(view.shown_records) == 4, "the four requests live")
        await wait_until(pilot, lambda: drawn(app), "the four rows drawn")
        assert app.is_running
        assert_shown_as_written(app)

    restarted = make_app(d, with_repo=False)  # the events come from the replay ring now
    async with restarted.run_test(size=(100, 30)) as pilot:
        view = restarted.traffic_view
        await wait_until(pilot, lambda: len(view.shown_records) == 4, "the four replayed")
        await wait_until(pilot, lambda: drawn(restarted), "the four rows drawn")
        assert restarted.is_running
        assert_shown_as_written(restarted)


SHOWN = ("[/]", "[red]x[/red]", "[@click=app.quit]")
"""How the hostile model names must appear: as written, never as markup."""


def drawn(app: Any) -> bool:
    """The rows are on screen (on a loaded machine, a moment after they are recorded).

    A notification (the live feed catching up on a loaded machine) can cover rows: each is
    checked for control characters, then dismissed."""
    for note in app._notifications:
        assert "\x1b" not in note.message and "\x07" not in note.message, note.message
    app.clear_notifications()
    screen = screen_text(app)
    return all(text in screen for text in SHOWN)


def assert_shown_as_written(app: Any) -> None:
    screen = screen_text(app)
    assert all(text in screen for text in SHOWN)
    records = app.traffic_view.shown_records
    assert {r.model for r in records} >= set(MARKUP_MODELS)
    assert {r.request_id for r in records} >= {"[/]-0", "[/]-1", "[/]-2"}
    for text in screen_texts(app):
        assert "\x1b" not in text and "\x07" not in text and "\r" not in text


def test_client_strings_cannot_forge_text_log_lines(deployment: Deployment) -> None:
    d = deployment
    assert raw_chat(d.gateway, d.keys["bob"], "gpt" + CONTROL, FORGED_ID) == 400
    assert raw_chat(d.gateway, d.keys["bob"], "[/]", FORGED_ID) == 404
    d.gateway.stop()  # the access lines are written by now
    logs = d.gateway.logs()
    assert "\x1b" not in logs and "\x07" not in logs and "\r" not in logs
    assert not any(line.startswith("2026-01-01T00:00:00") for line in logs.splitlines())
    access = [line for line in logs.splitlines() if "modelgate.access" in line]
    assert len(access) == 2, logs
    for line in access:
        assert 'request_id="x\\" status=200 key_id=admin"' in line, line
        assert " status=200" not in line.replace('\\" status=200', "")
        assert "key_id=bob" in line and "key_id=admin " not in line


def record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.makeLogRecord({"name": "modelgate.test", "msg": msg, "levelname": "INFO"})
    rec.__dict__.update(extra)
    return rec


def test_text_records_keep_each_client_string_inside_its_record() -> None:
    line = TextFormatter().format(record("upstream said" + CONTROL, upstream_message=CONTROL))
    _, *rest = line.split("\n")
    assert "\x1b" not in line and "\x07" not in line and "\r" not in line
    assert all(more.startswith("    ") for more in rest)  # only a real record starts a line
    assert 'upstream_message="\\x1b[2J\\x1b]0;owned\\x07\\r\\n2026' in line
    event = access_event(model="gpt" + CONTROL, request_id=FORGED_ID)
    (access,) = TextFormatter().format(access_batch_record("modelgate.access", [event])).split("\n")
    assert 'request_id="x\\" status=200 key_id=admin" key_id=bob' in access


def test_json_records_escape_what_a_terminal_would_act_on() -> None:
    hostile = CONTROL + "\x7f\x9b\u202e\u2028"
    line = JsonFormatter().format(record("upstream said", said=hostile))
    assert line.isprintable()  # one line; no control, bidi or separator character
    assert json.loads(line)["said"] == hostile
    batch = access_batch_record("modelgate.access", [access_event(model=hostile)])
    (access,) = JsonFormatter().format(batch).split("\n")
    assert access.isprintable() and json.loads(access)["model"] == hostile


def access_event(**fields: Any) -> dict[str, Any]:
    return {
        "ts": 1_800_000_000.0,
        "request_id": "r1",
        "key_id": "bob",
        "model": "gpt-4o-mini",
        "provider": None,
        "target": None,
        "status": 404,
        "latency_ms": 1.0,
        "ttfb_ms": None,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "stream": False,
        "protocol": "openai",
        "error": "not_found",
        **fields,
    }


def row(model: str) -> SummaryRow:
    return SummaryRow("bob", model, 1, 1, 0, 0, 1.0)


def test_usage_table_keeps_each_model_name_in_its_row_and_column() -> None:
    shown = {
        "gpt" + CONTROL: '"gpt\\x1b[2J\\x1b]0;owned\\x07\\r\\n2026-01-01T00:00:00 INFO    ',
        "a b  c": '"a b  c"',
        'say "hi"': '"say \\"hi\\""',
        "[/]": "[/]",
        "gpt-4o-mini": "gpt-4o-mini",
    }
    lines = format_table([row(model) for model in shown]).split("\n")
    assert len(lines) == 1 + len(shown)
    column = lines[0].index("MODEL")
    for line, text in zip(lines[1:], shown.values(), strict=True):
        assert line.startswith("bob ")
        assert line.split()[-7:] == ["1", "1", "0", "0", "0.000000", "0", "1.0"]
        assert line[column:].startswith(text), line
        assert line.isprintable(), line


def test_usage_cmd_prints_hostile_model_names_escaped(deployment: Deployment) -> None:
    d = deployment
    assert raw_chat(d.gateway, d.keys["bob"], "[/]") == 404
    d.gateway.stop()  # the request log is written at shutdown
    # The model-name grammar now refuses control characters before anything is logged; a
    # log written before it (or by another worker version) may still hold them.
    log = RequestLog(d.gateway.state_dir / DEFAULT_FILE, retention_days=30)
    log.open()
    log.add(access_event(model="gpt" + CONTROL, ts=time.time()))
    asyncio.run(log.close())
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "usage", "--state-dir", str(d.gateway.state_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().split("\n")
    assert len(lines) == 3 and all(line.isprintable() for line in lines), lines
    assert all(line.startswith(("KEY ", "bob ")) for line in lines), lines
    escaped = '"gpt\\x1b[2J\\x1b]0;owned\\x07\\r\\n2026-01-01T00:00:00'
    assert sorted(line.split()[1] for line in lines[1:]) == [escaped, "[/]"]


def test_policy_diff_shows_names_with_bidi_overrides_and_controls_escaped() -> None:
    hostile = "ops\u202egnp.exe\x1b[2J\u2066x"
    shown = code(hostile)
    assert shown.isprintable()
    assert "\\u202e" in shown and "\\x1b" in shown and "\\u2066" in shown
