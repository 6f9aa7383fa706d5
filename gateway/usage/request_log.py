"""Finished requests kept in SQLite (state dir), written in batches off the request path.

`add` appends a row to an in-memory list (bounded: when writing falls far behind, the oldest
pending rows are dropped and counted). `run` (a background task) hands the batch to a worker
thread about once a second; `close` writes what is left. WAL mode, so `modelgate usage` can
read while the gateway writes, and several workers may share the file. Rows older than the
retention are deleted at start and then hourly. Rows hold ids, names and numbers only: never
prompts, keys or hashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from gateway.payloads import RequestEvent
from gateway.usage.sqlite_wal import open_wal
from gateway.usage.traffic import micros_of

log = logging.getLogger("modelgate.requests")

DEFAULT_FILE = "requests.sqlite3"
FLUSH_INTERVAL_S = 1.0
PRUNE_INTERVAL_S = 3600.0
MAX_PENDING = 100_000
MAX_TEXT = 200
"""Client-chosen strings (model names) are cut to this length before they are stored."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    ts                REAL NOT NULL,     -- Unix time of arrival
    request_id        TEXT NOT NULL,
    key_id            TEXT,              -- NULL: no valid key was presented
    model             TEXT,              -- as the client asked for it
    provider          TEXT,
    target            TEXT,
    status            INTEGER NOT NULL,
    error             TEXT,
    latency_ms        REAL NOT NULL,
    ttfb_ms           REAL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    stream            INTEGER NOT NULL,
    protocol          TEXT,
    cost_micros       INTEGER,           -- micro-dollars; NULL: no known price
    team              TEXT,              -- the key's team, if any
    shadow            TEXT               -- JSON list of the shadow limits that would have
                                         -- refused it (["rpm", "team:t/tpm"]); NULL: none
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
CREATE INDEX IF NOT EXISTS requests_key_ts ON requests (key_id, ts);
"""
ADDED_COLUMNS = (("cost_micros", "INTEGER"), ("team", "TEXT"), ("shadow", "TEXT"))
"""Columns a log written by an earlier version lacks: added when it is opened."""
_COLUMNS = (
    "ts, request_id, key_id, model, provider, target, status, error, latency_ms, ttfb_ms, "
    "prompt_tokens, completion_tokens, stream, protocol, cost_micros, team, shadow"
)
_INSERT = f"INSERT INTO requests ({_COLUMNS}) VALUES ({', '.join('?' * 17)})"

Row = tuple[Any, ...]
WRITE_SLICE = 100
SLICE_PAUSE_S = 0.0002
"""A second's rows are written 100 at a time with a pause between: written at once they are
a few ms of SQLite that, on a gateway given one core, took it from the event loop (the p99
stall of issue 19, once a second)."""


def row_of(event: RequestEvent) -> Row:
    """A table row from a finished-request event (the event's fields, nothing more)."""
    model = event["model"]
    return (
        event["ts"],
        event["request_id"],
        event["key_id"],
        model[:MAX_TEXT] if model is not None else None,
        event["provider"],
        event["target"],
        event["status"],
        event["error"],
        event["latency_ms"],
        event["ttfb_ms"],
        event["prompt_tokens"],
        event["completion_tokens"],
        1 if event["stream"] else 0,
        event["protocol"],
        None if (cost := event.get("cost_usd")) is None else micros_of(cost),
        event.get("team"),
        json.dumps(shadow) if (shadow := event.get("shadow")) else None,
    )


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating, or adding the columns an earlier version lacked) the request log."""
    db = open_wal(path, _SCHEMA)
    have = {row[1] for row in db.execute("PRAGMA table_info(requests)")}
    for name, kind in ADDED_COLUMNS:
        if name not in have:
            with contextlib.suppress(sqlite3.OperationalError):  # another worker was first
                db.execute(f"ALTER TABLE requests ADD COLUMN {name} {kind}")
    return db


class RequestLog:
    def __init__(self, path: Path, retention_days: float) -> None:
        self.path = path
        self.retention_days = retention_days
        self._pending: deque[Row] = deque(maxlen=MAX_PENDING)
        self.dropped = 0
        self.error: str | None = None
        self._db: sqlite3.Connection | None = None
        self._db_lock = threading.Lock()  # one writer at a time: the flusher or `close`
        self._last_prune = 0.0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def open(self) -> None:
        """Open the database and delete rows past the retention (blocking)."""
        self._db = connect(self.path)
        self._prune()

    def add(self, event: RequestEvent) -> None:
        """Queue one finished-request event as its row (O(1); no IO). The row is made here,
        on the loop, so the writer thread runs little Python: a thread that holds the GIL
        for milliseconds stalls every request in flight.

        Past MAX_PENDING the oldest pending row is lost (and counted).
        """
        if len(self._pending) == MAX_PENDING:
            self.dropped += 1
        self._pending.append(row_of(event))

    async def run(self) -> None:
        """Write batches about once a second until cancelled (`close` writes the rest)."""
        try:
            while True:
                await asyncio.sleep(FLUSH_INTERVAL_S)
                await self.flush()
        except asyncio.CancelledError:
            return  # shutting down: an expected end, not a failure

    async def flush(self) -> None:
        if not self._pending:
            return
        batch = list(self._pending)
        self._pending.clear()
        await asyncio.to_thread(self._write, batch)

    async def close(self) -> None:
        """Write what is pending and close (at shutdown)."""
        await self.flush()
        await asyncio.to_thread(self._close)

    def _write(self, rows: list[Row]) -> None:
        with self._db_lock:
            db = self._db
            if db is None:
                return
            try:
                db.execute("BEGIN IMMEDIATE")
                for start in range(0, len(rows), WRITE_SLICE):
                    db.executemany(_INSERT, rows[start : start + WRITE_SLICE])
                    time.sleep(SLICE_PAUSE_S)  # the event loop's thread gets the core back
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                self.dropped += len(rows)  # kept out of memory: the disk may stay broken
                if self.error is None:
                    log.error("request log: writing %s failed: %s", self.path.name, exc)
                self.error = str(exc)
                return
            if self.error is not None:
                log.info("request log: writing works again")
                self.error = None
        if time.monotonic() - self._last_prune > PRUNE_INTERVAL_S:
            self._prune()

    def _prune(self) -> None:
        self._last_prune = time.monotonic()
        cutoff = time.time() - self.retention_days * 86400
        with self._db_lock:
            if self._db is None:
                return
            try:
                gone = self._db.execute("DELETE FROM requests WHERE ts < ?", (cutoff,)).rowcount
            except sqlite3.Error as exc:
                log.warning("request log: deleting old rows failed: %s", exc)
                return
        if gone:
            log.info("request log: deleted %d rows older than %g days", gone, self.retention_days)

    def _close(self) -> None:
        with self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None
