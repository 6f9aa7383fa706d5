"""Which key owns each file and batch id: SQLite in the state directory, shared by every
worker of one gateway and kept across restarts.

A row is written when the upstream answers a create (a file upload, a batch), and when the
gateway sees a batch name its output or error file (then that file is the batch owner's). A
key asking for an id it does not own is told 404, as for an id that does not exist, so a key
cannot even learn that another key's id exists. Each row also keeps the route the object
was created through (its upstream), and the upstream's last answer for it, from which the
list endpoints are answered: they list the key's own rows only, so a page never holds, nor
counts, another key's objects.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from gateway.usage.sqlite_wal import open_wal

DEFAULT_FILE = "files_batches.sqlite3"
Kind = Literal["file", "batch"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS owned (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    route TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    purpose TEXT,
    object BLOB,
    usage_counted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS owned_by_key ON owned (key_id, kind, created_at);
"""


@dataclass(frozen=True, slots=True)
class Owned:
    id: str
    route: str
    """The route (its provider holds the object) it was created through."""
    object: dict[str, Any] | None
    """The upstream's last answer for it (None: an output file not fetched yet)."""


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Owned]
    has_more: bool


class Ownership:
    """The store; its methods block on SQLite and run on a thread (the `a*` wrappers)."""

    def __init__(self, path: Path) -> None:
        self._db = open_wal(path, SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def claim(
        self, kind: Kind, obj_id: str, key_id: str, route: str, obj: dict[str, Any] | None
    ) -> None:
        """`obj_id` is `key_id`'s (a first claim wins: an id never changes owner)."""
        created = obj.get("created_at") if obj else None
        purpose = obj.get("purpose") if obj else None
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO owned (kind, id, key_id, route, created_at, purpose,"
                " object) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    kind,
                    obj_id,
                    key_id,
                    route,
                    created if isinstance(created, int) else int(time.time()),
                    purpose if isinstance(purpose, str) else None,
                    orjson.dumps(obj) if obj is not None else None,
                ),
            )

    def find(self, kind: Kind, obj_id: str, key_id: str) -> Owned | None:
        """The row when `key_id` owns `obj_id`; None when another key does or none."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, route, object FROM owned WHERE kind = ? AND id = ? AND key_id = ?",
                (kind, obj_id, key_id),
            ).fetchone()
        return _owned(row) if row is not None else None

    def remember(self, kind: Kind, obj_id: str, obj: dict[str, Any]) -> None:
        """Keep the upstream's latest answer for an owned id."""
        with self._lock:
            self._db.execute(
                "UPDATE owned SET object = ? WHERE kind = ? AND id = ?",
                (orjson.dumps(obj), kind, obj_id),
            )

    def forget(self, kind: Kind, obj_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM owned WHERE kind = ? AND id = ?", (kind, obj_id))

    def count_once(self, batch_id: str) -> bool:
        """True for exactly one caller across workers and restarts: the one that counts the
        batch's usage."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE owned SET usage_counted = 1"
                " WHERE kind = 'batch' AND id = ? AND usage_counted = 0",
                (batch_id,),
            )
        return cursor.rowcount == 1

    def page(
        self,
        kind: Kind,
        key_id: str,
        *,
        after: str | None,
        limit: int,
        newest_first: bool = True,
        purpose: str | None = None,
    ) -> Page:
        """`key_id`'s rows after the row `after` (a cursor that is not the key's own gives
        an empty page), ordered by creation then insertion."""
        where = ["kind = ?", "key_id = ?"]
        args: list[Any] = [kind, key_id]
        if purpose is not None:
            where.append("purpose = ?")
            args.append(purpose)
        with self._lock:
            if after is not None:
                cursor = self._db.execute(
                    "SELECT created_at, rowid FROM owned WHERE kind = ? AND id = ? AND key_id = ?",
                    (kind, after, key_id),
                ).fetchone()
                if cursor is None:
                    return Page([], False)
                where.append(
                    "(created_at, rowid) < (?, ?)"
                    if newest_first
                    else "(created_at, rowid) > (?, ?)"
                )
                args += list(cursor)
            direction = "DESC" if newest_first else "ASC"
            rows = self._db.execute(
                f"SELECT id, route, object FROM owned WHERE {' AND '.join(where)}"
                f" ORDER BY created_at {direction}, rowid {direction} LIMIT ?",
                (*args, limit + 1),
            ).fetchall()
        return Page([_owned(r) for r in rows[:limit]], len(rows) > limit)

    # Awaitable wrappers: SQLite waits (another worker's write) never block the event loop.
    async def aclaim(
        self, kind: Kind, obj_id: str, key_id: str, route: str, obj: dict[str, Any] | None
    ) -> None:
        await asyncio.to_thread(self.claim, kind, obj_id, key_id, route, obj)

    async def afind(self, kind: Kind, obj_id: str, key_id: str) -> Owned | None:
        return await asyncio.to_thread(self.find, kind, obj_id, key_id)

    async def aremember(self, kind: Kind, obj_id: str, obj: dict[str, Any]) -> None:
        await asyncio.to_thread(self.remember, kind, obj_id, obj)

    async def aforget(self, kind: Kind, obj_id: str) -> None:
        await asyncio.to_thread(self.forget, kind, obj_id)

    async def acount_once(self, batch_id: str) -> bool:
        return await asyncio.to_thread(self.count_once, batch_id)


def _owned(row: tuple[str, str, bytes | None]) -> Owned:
    obj_id, route, raw = row
    return Owned(obj_id, route, orjson.loads(raw) if raw is not None else None)


_STORES: dict[Path, Ownership] = {}


def ownership_at(state_dir: Path) -> Ownership:
    """This worker's store for a state directory, opened on first use (each worker process
    has its own connection to the shared file)."""
    store = _STORES.get(state_dir)  # as given: no path resolution per request
    if store is None:
        store = _STORES[state_dir] = Ownership((state_dir / DEFAULT_FILE).resolve())
    return store
