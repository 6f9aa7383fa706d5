"""`modelgate usage`: requests, errors, tokens and p50 latency per key and model, from the
request log the gateway keeps in its state dir."""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from gateway.logs import one_line
from gateway.settings import Settings
from gateway.usage.request_log import DEFAULT_FILE
from gateway.usage.request_report import SummaryRow, parse_since, summarize

HEADERS = ("KEY", "MODEL", "REQUESTS", "ERRORS", "TOKENS IN", "TOKENS OUT", "P50 MS")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], environ: Mapping[str, str]
) -> None:
    parser = sub.add_parser("usage", help="requests and tokens per key and model")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(environ.get("MG_STATE_DIR", str(Settings().state_dir))),
        help="the gateway's state dir (holds requests.sqlite3)",
    )
    parser.add_argument("--key", help="only this key id")
    parser.add_argument("--since", help="a duration ago (1h, 30m, 7d) or a date (2026-11-01)")
    parser.set_defaults(handler=run)


def format_table(rows: Sequence[SummaryRow]) -> str:
    """An aligned text table. Model names are whatever clients sent: each is one quoted
    word when it holds spaces, quotes or control characters, so it keeps to its row."""
    lines = [
        (
            one_line(row.key_id or "(no key)"),
            one_line(row.model or "-"),
            str(row.requests),
            str(row.errors),
            str(row.prompt_tokens),
            str(row.completion_tokens),
            f"{row.p50_latency_ms:.1f}",
        )
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in (HEADERS, *lines)) for i in range(len(HEADERS))]

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in pairs).rstrip()

    return "\n".join([line(HEADERS), *(line(cells) for cells in lines)])


def run(args: argparse.Namespace) -> int:
    path = args.state_dir / DEFAULT_FILE
    if not path.exists():
        print(
            f"modelgate usage: no request log at {path}. Pass the gateway's --state-dir.",
            file=sys.stderr,
        )
        return 1
    try:
        since = parse_since(args.since, time.time()) if args.since else 0.0
    except ValueError as exc:
        print(f"modelgate usage: {exc}", file=sys.stderr)
        return 2
    try:
        rows = summarize(path, since, args.key)
    except sqlite3.Error as exc:
        print(f"modelgate usage: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    if not rows:
        print("No requests recorded in that period.")
        return 0
    print(format_table(rows))
    return 0
