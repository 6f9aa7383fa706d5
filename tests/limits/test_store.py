"""The SQLite usage store: WAL, batched writes off the request path, totals per day and month."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from gateway.usage.store import UsageStore, UsageTotals


def written(path: Path, table: str = "usage_day") -> list[tuple[str, str, int, int]]:
    """Rows as another process would see them (a separate connection)."""
    with sqlite3.connect(path) as db:
        rows = db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    db.close()
    return rows


def test_database_is_in_wal_mode(store: UsageStore, store_path: Path) -> None:
    store.open()
    with sqlite3.connect(store_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


def test_record_does_no_io_until_the_batch_is_written(store: UsageStore, store_path: Path) -> None:
    store.open()
    store.record("a", "2025-03-14", "2025-03", 10)
    store.record("a", "2025-03-14", "2025-03", 5)
    store.record("b", "2025-03-14", "2025-03", 1, requests=2)
    assert written(store_path) == []
    store.flush()
    assert written(store_path) == [
        ("a", "2025-03-14", 15, 2),
        ("b", "2025-03-14", 1, 2),
    ]
    assert written(store_path, "usage_month") == [
        ("a", "2025-03", 15, 2),
        ("b", "2025-03", 1, 2),
    ]


def test_the_background_writer_writes_within_its_interval(store_path: Path) -> None:
    store = UsageStore(store_path, flush_interval_s=0.1)
    store.open()
    try:
        store.record("a", "2025-03-14", "2025-03", 3)
        deadline = time.monotonic() + 5
        while not written(store_path) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert written(store_path) == [("a", "2025-03-14", 3, 1)]
    finally:
        store.close()


def test_close_writes_what_is_pending(store_path: Path) -> None:
    store = UsageStore(store_path, flush_interval_s=3600)
    store.open()
    store.record("a", "2025-03-14", "2025-03", 8)
    store.close()
    store.close()  # twice is fine
    assert written(store_path) == [("a", "2025-03-14", 8, 1)]


def test_totals_of_a_day_and_a_month(store: UsageStore) -> None:
    store.open()
    store.record("a", "2025-03-13", "2025-03", 100)
    store.record("a", "2025-03-14", "2025-03", 10)
    store.record("b", "2025-02-28", "2025-02", 7)
    store.record("c", "2025-03-01", "2025-03", 1)
    store.flush()
    assert store.load_totals("2025-03-14", "2025-03") == {
        "a": UsageTotals(day_tokens=10, day_requests=1, month_tokens=110, month_requests=2),
        "c": UsageTotals(month_tokens=1, month_requests=1),
    }


def test_two_processes_sharing_the_file_add_up(store_path: Path) -> None:
    first = UsageStore(store_path, flush_interval_s=3600)
    second = UsageStore(store_path, flush_interval_s=3600)
    first.open()
    second.open()
    try:
        first.record("a", "2025-03-14", "2025-03", 10)
        second.record("a", "2025-03-14", "2025-03", 20)
        first.flush()
        second.flush()
        assert written(store_path) == [("a", "2025-03-14", 30, 2)]
    finally:
        first.close()
        second.close()


def test_a_failed_write_is_kept_and_retried(store_path: Path) -> None:
    store = UsageStore(store_path, flush_interval_s=3600)
    store.open()
    store.close()
    store.record("a", "2025-03-14", "2025-03", 4)
    store.flush()  # not open: the write fails
    assert store.error is not None
    store.open()
    try:
        store.flush()
        assert store.error is None
        assert written(store_path) == [("a", "2025-03-14", 4, 1)]
    finally:
        store.close()
