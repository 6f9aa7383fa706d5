"""Per-key token usage and spend in SQLite (per UTC day and per month), written off the
request path. Team scopes are kept the same way, under the id `team:NAME`.

`record` only adds to an in-memory batch under a lock; a background thread writes the batch
in one transaction at most once a second, and `close` writes what is left. The database is
in WAL mode with synchronous=NORMAL: a committed batch survives the process being killed,
so a crash (SIGKILL) loses at most the last second of usage, the batch not yet written.
Several worker processes may share one file: writes are increments, never overwrites.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from gateway.usage.sqlite_wal import open_wal

log = logging.getLogger("modelgate.usage")

DEFAULT_FILE = "usage.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage_day (
    key_id   TEXT NOT NULL,
    day      TEXT NOT NULL,              -- YYYY-MM-DD, UTC
    tokens   INTEGER NOT NULL DEFAULT 0, -- prompt + completion
    requests INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage_month (
    key_id   TEXT NOT NULL,
    month    TEXT NOT NULL,              -- YYYY-MM, UTC
    tokens   INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, month)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spend_day (
    key_id      TEXT NOT NULL,
    day         TEXT NOT NULL,
    cost_micros INTEGER NOT NULL DEFAULT 0, -- micro-dollars (1e-6 USD)
    PRIMARY KEY (key_id, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spend_month (
    key_id      TEXT NOT NULL,
    month       TEXT NOT NULL,
    cost_micros INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, month)
) WITHOUT ROWID;
"""
_ADD_DAY = (
    "INSERT INTO usage_day (key_id, day, tokens, requests) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key_id, day) DO UPDATE SET tokens = tokens + excluded.tokens, "
    "requests = requests + excluded.requests"
)
_ADD_MONTH = (
    "INSERT INTO usage_month (key_id, month, tokens, requests) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key_id, month) DO UPDATE SET tokens = tokens + excluded.tokens, "
    "requests = requests + excluded.requests"
)

_ADD_SPEND = (
    "INSERT INTO spend_{0} (key_id, {0}, cost_micros) VALUES (?, ?, ?) "
    "ON CONFLICT (key_id, {0}) DO UPDATE SET cost_micros = cost_micros + excluded.cost_micros"
)
_Batch = dict[tuple[str, str, str], list[int]]
"""(key_id, day, month) -> [tokens, requests, cost_micros]"""


@dataclass(frozen=True, slots=True)
class UsageTotals:
    day_tokens: int = 0
    day_requests: int = 0
    month_tokens: int = 0
    month_requests: int = 0
    day_cost_micros: int = 0
    month_cost_micros: int = 0


class UsageStore:
    """Token and request totals per key, per UTC day and month, in `path` (SQLite)."""

    def __init__(self, path: Path, *, flush_interval_s: float = 1.0) -> None:
        self.path = path
        self.flush_interval_s = flush_interval_s
        self._pending: _Batch = {}
        self._pending_lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._db_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: str | None = None

    @property
    def error(self) -> str | None:
        """Why the last write failed (None once a write succeeds again)."""
        return self._error

    def open(self) -> None:
        """Create or open the database and start the background writer."""
        self._db = open_wal(self.path, _SCHEMA)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._write_periodically, name="modelgate-usage-writer", daemon=True
        )
        self._thread.start()

    def record(
        self,
        key_id: str,
        day: str,
        month: str,
        tokens: int,
        requests: int = 1,
        cost_micros: int = 0,
    ) -> None:
        """Add usage (and spend, in micro-dollars) to the next batch (no IO; any thread)."""
        slot = (key_id, day, month)
        with self._pending_lock:
            entry = self._pending.get(slot)
            if entry is None:
                self._pending[slot] = [tokens, requests, cost_micros]
            else:
                entry[0] += tokens
                entry[1] += requests
                entry[2] += cost_micros

    def load_totals(self, day: str, month: str) -> dict[str, UsageTotals]:
        """Written totals of every key for one day and one month (blocking; not on a loop)."""
        db = self._require_db()
        with self._db_lock:
            days = db.execute(
                "SELECT key_id, tokens, requests FROM usage_day WHERE day = ?", (day,)
            ).fetchall()
            months = db.execute(
                "SELECT key_id, tokens, requests FROM usage_month WHERE month = ?", (month,)
            ).fetchall()
            day_spend = db.execute(
                "SELECT key_id, cost_micros FROM spend_day WHERE day = ?", (day,)
            ).fetchall()
            month_spend = db.execute(
                "SELECT key_id, cost_micros FROM spend_month WHERE month = ?", (month,)
            ).fetchall()
        found: dict[str, list[int]] = {}
        for key_id, tokens, requests in days:
            found.setdefault(key_id, [0] * 6)[0:2] = [tokens, requests]
        for key_id, tokens, requests in months:
            found.setdefault(key_id, [0] * 6)[2:4] = [tokens, requests]
        for key_id, cost in day_spend:
            found.setdefault(key_id, [0] * 6)[4] = cost
        for key_id, cost in month_spend:
            found.setdefault(key_id, [0] * 6)[5] = cost
        return {key_id: UsageTotals(*values) for key_id, values in found.items()}

    def flush(self) -> None:
        """Write the pending batch now (blocking). A failed batch is kept for the next try."""
        with self._pending_lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, {}
        try:
            self._write(batch)
        except sqlite3.Error as exc:
            self._put_back(batch)
            if self._error is None:
                log.error("usage store: writing %s failed, will retry: %s", self.path.name, exc)
            self._error = f"usage store: {exc}"
        else:
            if self._error is not None:
                log.info("usage store: writing works again")
            self._error = None

    def close(self) -> None:
        """Stop the writer and write what is pending. Safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._db is not None:
            self.flush()
            with self._db_lock:
                self._db.close()
                self._db = None

    def _write_periodically(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()

    def _write(self, batch: _Batch) -> None:
        days: dict[tuple[str, str], list[int]] = {}
        months: dict[tuple[str, str], list[int]] = {}
        for (key_id, day, month), (tokens, requests, cost) in batch.items():
            for into, period in ((days, (key_id, day)), (months, (key_id, month))):
                total = into.setdefault(period, [0, 0, 0])
                total[0] += tokens
                total[1] += requests
                total[2] += cost
        db = self._require_db()
        with self._db_lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(_ADD_DAY, [(*k, *v[:2]) for k, v in days.items()])
                db.executemany(_ADD_MONTH, [(*k, *v[:2]) for k, v in months.items()])
                for table, totals in (("day", days), ("month", months)):
                    spent = [(*k, v[2]) for k, v in totals.items() if v[2]]
                    if spent:
                        db.executemany(_ADD_SPEND.format(table), spent)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _put_back(self, batch: _Batch) -> None:
        with self._pending_lock:
            for slot, (tokens, requests, cost) in batch.items():
                entry = self._pending.setdefault(slot, [0, 0, 0])
                entry[0] += tokens
                entry[1] += requests
                entry[2] += cost

    def _require_db(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("the usage store is not open")
        return self._db
