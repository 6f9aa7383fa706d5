"""The recorded traffic a plan replays: request-log rows, read from the state directory's
SQLite log or from a gateway's NDJSON export (GET /admin/api/requests), oldest first.

Only what the replay needs is read: ids, names, statuses, numbers. Never prompts (the log
has none), never key hashes or secrets. Rows are read in batches so a week of traffic
(millions of rows) is never held in memory at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import orjson

BATCH_ROWS = 2000
"""Rows fetched from SQLite per step (a few hundred kB)."""

FIELDS = (
    "ts",
    "latency_ms",
    "key_id",
    "team",
    "model",
    "provider",
    "target",
    "status",
    "error",
    "prompt_tokens",
    "completion_tokens",
    "cost_micros",
)
"""The columns read, in this order; also the export's NDJSON fields."""
_OPTIONAL = frozenset({"team", "cost_micros"})
"""Columns a log written by an earlier version lacks (read as NULL)."""


class TraceRow(NamedTuple):
    """One finished request, as recorded."""

    ts: float
    """Arrival, Unix seconds."""
    latency_ms: float
    """Until the request ended: arrival + latency is when the live limiter settled it."""
    key_id: str | None
    team: str | None
    model: str | None
    provider: str | None
    target: str | None
    """`provider/upstream-model` that served it (None when none did)."""
    status: int
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_micros: int | None


class TraceError(Exception):
    """The traffic could not be read (no log, unreadable log, the gateway refused)."""


def _select(db: sqlite3.Connection) -> str:
    have = {row[1] for row in db.execute("PRAGMA table_info(requests)")}
    if not have:
        raise TraceError("it has no requests table")
    columns = ", ".join(
        name if name in have or name not in _OPTIONAL else f"NULL AS {name}" for name in FIELDS
    )
    return f"SELECT {columns} FROM requests WHERE ts >= ? ORDER BY ts"


def log_batches(path: Path, since: float, batch_rows: int = BATCH_ROWS) -> Generator[list[Any]]:
    """Lists of at most `batch_rows` row tuples (columns as FIELDS) from `since` on, oldest
    first, read-only. Raises TraceError when the log is missing or unreadable."""
    if not path.is_file():
        raise TraceError(f"no request log at {path}")
    try:
        uri = f"{path.absolute().as_uri()}?mode=ro"  # as_uri needs an absolute path
        db = sqlite3.connect(uri, uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise TraceError(f"cannot open {path}: {exc}") from None
    try:
        db.execute("PRAGMA busy_timeout=5000")  # the gateway may be writing
        cursor = db.execute(_select(db), (since,))
        while batch := cursor.fetchmany(batch_rows):
            yield batch
    except sqlite3.Error as exc:
        raise TraceError(f"cannot read {path}: {exc}") from None
    finally:
        db.close()


def read_log(path: Path, since: float) -> Iterator[TraceRow]:
    """The state directory's request log from `since` on, oldest first."""
    make = TraceRow._make
    for batch in log_batches(path, since):
        yield from map(make, batch)


def row_of_json(line: bytes | str) -> TraceRow:
    """One NDJSON line of the export; raises TraceError on a line that is not a row."""
    try:
        data = orjson.loads(line)
        if "error" in data and "ts" not in data:
            raise TraceError(f"the export stopped early: {data['error']}")
        return TraceRow._make(data.get(name, None) for name in FIELDS)
    except (orjson.JSONDecodeError, TypeError, AttributeError) as exc:
        raise TraceError(f"the export sent a line that is not a request row ({exc})") from None


def read_ndjson(lines: Iterable[bytes | str]) -> Iterator[TraceRow]:
    for line in lines:
        if line.strip():
            yield row_of_json(line)


def fetch_from_gateway(
    url: str, admin_token: str, since: float, timeout_s: float = 60.0
) -> Iterator[TraceRow]:
    """The rows a gateway exports (GET /admin/api/requests?since=...), read as they arrive."""
    endpoint = url.rstrip("/") + "/admin/api/requests"
    headers = {"authorization": f"Bearer {admin_token}"}
    try:
        with (
            httpx.Client(timeout=timeout_s) as client,
            client.stream("GET", endpoint, params={"since": repr(since)}, headers=headers) as got,
        ):
            if got.status_code != 200:
                got.read()
                raise TraceError(f"the gateway answered {got.status_code}: {_message(got)}")
            yield from read_ndjson(got.iter_lines())
    except httpx.HTTPError as exc:
        # The URL is the operator's own; the token never appears in the message.
        raise TraceError(f"cannot read {endpoint}: {type(exc).__name__}: {exc}") from None


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
