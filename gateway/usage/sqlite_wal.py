"""Opening the state directory's SQLite files the one way they are used: WAL, shared by workers."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_wal(path: Path, schema: str) -> sqlite3.Connection:
    """Open (creating) a database in WAL mode with `schema` applied; for a writer thread."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")  # other workers share the file
        db.executescript(schema)
    except sqlite3.Error:
        db.close()
        raise
    return db
