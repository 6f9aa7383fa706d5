"""`modelgate usage`: requests, errors, tokens, cost and p50 latency per key and model (or per
key, team, model or provider with --by), from the request log the gateway keeps in its state
dir. COST USD sums the priced requests; UNPRICED counts those whose target has no price."""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from gateway.logs import one_line
from gateway.pricing import usd_text
from gateway.settings import Settings
from gateway.usage.request_log import DEFAULT_FILE
from gateway.usage.request_report import SummaryRow, parse_since, summarize

HEADERS = (
    "KEY",
    "MODEL",
    "REQUESTS",
    "ERRORS",
    "TOKENS IN",
    "TOKENS OUT",
    "COST USD",
    "UNPRICED",
    "P50 MS",
)
_BY_HEADER = {"key": "KEY", "team": "TEAM", "model": "MODEL", "provider": "PROVIDER"}
_NONE_SHOWN = {"key": "(no key)", "team": "(no team)", "model": "-", "provider": "(none)"}


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
    parser.add_argument(
        "--by",
        choices=sorted(_BY_HEADER),
        help="one row per key, team, model or provider (default: per key and model)",
    )
    parser.set_defaults(handler=run)


def format_table(rows: Sequence[SummaryRow], by: str | None = None) -> str:
    """An aligned text table. Model names are whatever clients sent: each is one quoted
    word when it holds spaces, quotes or control characters, so it keeps to its row."""
    names = 2 if by is None else 1
    headers = HEADERS if by is None else (_BY_HEADER[by], *HEADERS[2:])
    lines = [
        (
            *(
                (one_line(row.key_id or "(no key)"), one_line(row.model or "-"))
                if by is None
                else (one_line(row.key_id or _NONE_SHOWN[by]),)
            ),
            str(row.requests),
            str(row.errors),
            str(row.prompt_tokens),
            str(row.completion_tokens),
            usd_text(row.cost_micros),
            str(row.unpriced),
            f"{row.p50_latency_ms:.1f}",
        )
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in (headers, *lines)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i < names else c.rjust(w) for i, (c, w) in pairs).rstrip()

    return "\n".join([line(headers), *(line(cells) for cells in lines)])


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
        rows = summarize(path, since, args.key, args.by or "key-model")
    except sqlite3.Error as exc:
        print(f"modelgate usage: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    if not rows:
        print("No requests recorded in that period.")
        return 0
    print(format_table(rows, args.by))
    return 0
