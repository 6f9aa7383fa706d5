"""Short texts for table cells and status lines (Rich text, no Textual).

Every string from outside the UI (a client's model name or request id, the gateway's
answers, names and messages from the policy repository) reaches the screen through `safe`
or `plain`: shown literally, never read as markup, and unable to move the cursor or recolour
the terminal.
"""

from __future__ import annotations

import datetime as dt

from rich.text import Text

from gateway.payloads import KeyUsage
from policies.models import Key, Limits

BAR_FULL, BAR_EMPTY = "█", "░"
MAX_SHOWN = 300
"""Characters of one outside string shown at most (a client can send far more)."""
MAX_MESSAGE = 4000
"""Characters of one outside message shown at most (policy errors run over many lines)."""
ELLIPSIS = "…"


def safe(value: object, limit: int = MAX_SHOWN, *, lines: bool = False) -> str:
    """`value` as text fit for the screen: every character a terminal would act on or that
    would hide text (control characters and so escape sequences, line breaks unless `lines`,
    bidirectional overrides, zero-width spaces) is written as its escape (`\\x1b`, `\\u202e`),
    and past `limit` characters the text is cut and ends in `…`.

    Give the result to `Text` (or `plain`), never to markup.
    """
    whole = str(value)
    text = whole[:limit]  # cut first: the work stays bounded by `limit`
    if not text.isprintable():
        text = "".join(_visible(c, lines) for c in text)
    if len(text) > limit or len(whole) > limit:
        text = text[: limit - 1] + ELLIPSIS
    return text


def message(value: object) -> str:
    """`safe` for a message that may run over lines (a policy error, a notification)."""
    return safe(value, MAX_MESSAGE, lines=True)


def plain(value: object, limit: int = MAX_SHOWN, *, style: str = "") -> Text:
    """`safe(value)` as Rich text: a table cell or label shown exactly as written."""
    return Text(safe(value, limit), style=style, end="")


def _visible(char: str, lines: bool) -> str:
    if char.isprintable() or (lines and char == "\n"):
        return char
    return repr(char)[1:-1]


def count(n: float | None) -> str:
    """1234 -> 1.2k, 5600000 -> 5.6M; '-' for nothing."""
    if n is None:
        return "-"
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.1f}".removesuffix(".0") + unit
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.1f}"


def money(usd: float | None) -> str:
    """A request's cost: $0.0123 (4 significant decimals below a dollar); '?' when the
    price is unknown (never shown as $0)."""
    if usd is None:
        return "?"
    if usd >= 1:
        return f"${usd:,.2f}"
    return f"${usd:.4f}" if usd >= 0.0001 or usd == 0 else f"${usd:.6f}"


def millis(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms / 1000:.2f}s" if ms >= 1000 else f"{ms:.0f}ms"


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction * 100:.1f}%"


def clock_time(ts: float, tz: dt.tzinfo | None) -> str:
    """HH:MM:SS of a unix time, in `tz` (None: the local zone)."""
    return dt.datetime.fromtimestamp(ts, tz or None).strftime("%H:%M:%S")


def short(sha: str | None, n: int = 7) -> str:
    return safe(sha[:n]) if sha else "-"


def status_text(status: int, error: str | None = None) -> Text:
    style = "green" if status < 400 and not error else "yellow" if status < 500 else "red"
    return Text(str(status), style=style)


def bar(used: float, limit: float | None, width: int = 10) -> Text:
    """`████░░░░░░ 42%`, red past 90%; without a limit just the count."""
    if not limit:
        return Text(count(used), style="dim")
    share = min(1.0, used / limit)
    filled = round(share * width)
    style = "red" if share >= 0.9 else "yellow" if share >= 0.7 else "green"
    text = Text(BAR_FULL * filled, style=style)
    text.append(BAR_EMPTY * (width - filled), style="dim")
    text.append(f" {share * 100:3.0f}%")
    return text


def key_state(key: Key | None, usage: KeyUsage | None, today: dt.date) -> Text:
    disabled = key.disabled if key else bool(usage and usage.get("disabled"))
    expires = key.expires if key else _date(usage.get("expires") if usage else None)
    if disabled:
        return Text("disabled", style="red")
    if expires is not None and expires < today:
        return Text("expired", style="red")
    return Text("active", style="green")


def models_text(models: tuple[str, ...] | None) -> str:
    return "(all)" if models is None else ", ".join(models) or "(none)"


def limits_text(limits: Limits | None) -> str:
    if limits is None:
        return "-"
    fields = limits.model_dump(exclude_none=True)
    names = {"tokens_per_day": "day", "tokens_per_month": "month", "max_concurrency": "conc"}
    return " ".join(f"{names.get(k, k)}={count(v)}" for k, v in fields.items()) or "-"


def _date(value: object) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
