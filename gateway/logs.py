"""Logging set-up: human text or one JSON object per line, written by a background thread.

The serving loop only hands records to a bounded queue (a full queue drops the record and
counts it), so a slow or blocked stderr never stalls requests. Every line passes a last
redaction step: anything shaped like a client key (`mg-...`), an upstream key (`sk-...`,
`AIza...`, a Bearer token), a SHA-256 hex digest or a URL with a password is masked,
whatever a caller put in a message.

Log lines carry strings clients chose (model names, request ids) and upstreams wrote
(error messages), so neither format lets one end a line or reach a terminal as a control
sequence: JSON escapes every unprintable character, and text lines quote such values and
indent the continuation lines of a message, so only a real record starts a line.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import os
import queue
import re
import string
import sys
import time
from typing import Any

import orjson

from gateway.payloads import RequestEvent

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
QUEUE_SIZE = 10_000

_CLIENT_KEY = re.compile(r"mg-[A-Za-z0-9_-]{16,}")
_SHA256_HEX = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")
_URL_PASSWORD = re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)")
# Upstream credentials: OpenAI/Anthropic keys (sk-, sk-proj-, sk-ant-), Google API keys,
# and any Bearer token (an upstream may quote one back in its error message).
_UPSTREAM_KEY = re.compile(
    r"\b(?P<prefix>sk-|AIza)[A-Za-z0-9_-]{8,}|(?P<bearer>(?i:\bbearer\s+))[A-Za-z0-9._~+/=-]{8,}"
)
# Hex digits to "1", anything else to "0": a line holds no SHA-256 digest unless its mask
# holds 64 ones in a row, which a byte search finds 20 times faster than the regex.
_HEX_MASK = bytes(0x31 if chr(i) in string.hexdigits else 0x30 for i in range(256))
_HEX_RUN = b"1" * 64


def redact(line: str) -> str:
    """Mask client keys, SHA-256 digests, URL passwords and upstream key shapes in a finished
    log line (also applied to upstream error messages before a client sees them).

    Each pattern is searched separately, and only when a cheap test says it may be there:
    one combined pattern costs several times more per line.
    """
    if "mg-" in line:
        line = _CLIENT_KEY.sub("mg-[redacted]", line)
    if _HEX_RUN in line.encode("utf-8", "surrogatepass").translate(_HEX_MASK):
        line = _SHA256_HEX.sub("[redacted-sha256]", line)
    if "@" in line:
        line = _URL_PASSWORD.sub("[redacted]", line)
    if "sk-" in line or "AIza" in line or "earer" in line or "EARER" in line:
        line = _UPSTREAM_KEY.sub(_masked_key, line)
    return line


def _masked_key(match: re.Match[str]) -> str:
    return (match.group("prefix") or match.group("bearer")) + "[redacted]"


MAX_LOGGED_TEXT = 200
ACCESS_BATCH = "access_batch"
"""The attribute of a log record that carries many finished requests' access lines."""
FORMATTED = "formatted"
"""The attribute of a log record whose text was formatted already (on the event loop)."""


CONTINUATION = "    "
"""The indent of a text record's further lines (a message's, a traceback's)."""
_NEEDS_QUOTES = re.compile(r'[\s"=\\]')
_PLAIN_TYPES = (int, float, bool)


def _safe_text(value: str | None) -> str | None:
    """A client-chosen string cut short; each format escapes what it must."""
    return value if value is None else value[:MAX_LOGGED_TEXT]


def _escaped(text: str, *, newlines: bool = False) -> str:
    """`text` with each unprintable character as its Python escape (`\\r`, `\\x1b`,
    `\\u202e`); line breaks kept when `newlines`."""
    if text.isprintable():
        return text
    keep = "\n" if newlines else ""
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)


def one_line(value: object) -> str:
    """A client's string as one word of a line of text (a log field's value, a table cell):
    bare when it is one printable word, else double-quoted with its quotes, backslashes and
    unprintable characters escaped, so it cannot end the line, pass for another field or
    reach a terminal as a control sequence."""
    if value is None or type(value) in _PLAIN_TYPES:  # most access fields: nothing to check
        return str(value)
    text = str(value)
    if text and text.isprintable() and not _NEEDS_QUOTES.search(text):
        return text
    return '"' + _escaped(text.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def _json_line(line: str) -> str:
    """orjson escapes what JSON requires (below U+0020); the other characters a terminal
    acts on or that hide text (DEL, C1 controls, bidi overrides) go out as `\\u` escapes."""
    if line.isprintable():
        return line
    return "".join(c if c.isprintable() else _json_escape(c) for c in line)


def _json_escape(char: str) -> str:
    units = char.encode("utf-16-be")
    return "".join(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2))


def access_fields(event: RequestEvent) -> dict[str, Any]:
    """The access line's fields: ids, names, numbers. Never prompts, keys or hashes."""
    return {
        "request_id": event["request_id"],
        "key_id": event["key_id"],
        "model": _safe_text(event["model"]),
        "provider": event["provider"],
        "target": _safe_text(event["target"]),
        "status": event["status"],
        "latency_ms": event["latency_ms"],
        "ttfb_ms": event["ttfb_ms"],
        "prompt_tokens": event["prompt_tokens"],
        "completion_tokens": event["completion_tokens"],
        "stream": event["stream"],
        "error": event["error"],
    }


def access_batch_record(name: str, events: list[RequestEvent]) -> logging.LogRecord:
    """One record for many access lines (built directly: `Logger.info` walks the stack)."""
    record = logging.LogRecord(name, logging.INFO, __file__, 0, "requests finished", None, None)
    setattr(record, ACCESS_BATCH, events)
    return record


def access_text(name: str, events: list[RequestEvent]) -> str:
    """`events`' access lines, formatted now (in the configured format).

    The event loop formats them, a slice at a time: formatted on the log thread, a batch
    held the GIL for milliseconds, and every request in flight waited for it at each of its
    socket calls (the p99 stalls, twice a second, of issue 19).
    """
    return _formatter.format(access_batch_record(name, events))


def formatted_record(name: str, text: str) -> logging.LogRecord:
    """A record the log thread writes as it is (access_text's lines)."""
    record = logging.LogRecord(name, logging.INFO, __file__, 0, "requests finished", None, None)
    setattr(record, FORMATTED, text)
    return record


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    if record.exc_info:
        return formatter.formatException(record.exc_info)
    return record.exc_text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        formatted: str | None = record.__dict__.get(FORMATTED)
        if formatted is not None:
            return formatted
        batch = record.__dict__.get(ACCESS_BATCH)
        if batch is not None:
            return redact("\n".join(self._access_line(record.name, event) for event in batch))
        data: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        exc = _exception_text(self, record)
        if exc:
            data["exc"] = exc
        return redact(_json_line(orjson.dumps(data, default=str).decode()))

    @staticmethod
    def _access_line(logger: str, event: RequestEvent) -> str:
        data = {
            "ts": round(event["ts"], 3),
            "level": "info",
            "logger": logger,
            "msg": "request finished",
            **access_fields(event),
        }
        return _json_line(orjson.dumps(data).decode())


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        formatted: str | None = record.__dict__.get(FORMATTED)
        if formatted is not None:
            return formatted
        batch = record.__dict__.get(ACCESS_BATCH)
        if batch is not None:
            return redact("\n".join(self._access_line(record.name, event) for event in batch))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        fields = vars(record).items()
        extra = " ".join(f"{k}={one_line(v)}" for k, v in fields if k not in _STANDARD)
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extra:
            line += f" [{extra}]"
        exc = _exception_text(self, record)
        if exc:
            line += "\n" + exc
        return redact(_escaped(line, newlines=True).replace("\n", "\n" + CONTINUATION))

    @staticmethod
    def _access_line(logger: str, event: RequestEvent) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(event["ts"]))
        extra = " ".join([f"{k}={one_line(v)}" for k, v in access_fields(event).items()])
        return f"{stamp} INFO    {logger}: request finished [{extra}]"


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Hands records to the log thread; never blocks the caller."""

    def __init__(self, records: queue.Queue[logging.LogRecord]) -> None:
        super().__init__(records)
        self.dropped = 0
        self.pid = os.getpid()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # Resolve the message now (its arguments may change later) and keep extras as they
        # are; the exception is rendered here because a traceback cannot wait.
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


_formatter: logging.Formatter = TextFormatter()
"""The configured format (configure_logging), for lines formatted before the log thread."""


def configure_logging(level: str, fmt: str) -> None:
    """Root logging to stderr through a background writer thread (stopped at exit).

    Once per process: a worker process (forked or spawned) calls it again to get its own
    writer thread; a second call in the same process does nothing.
    """
    root = logging.getLogger()
    if any(getattr(h, "pid", None) == os.getpid() for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    global _formatter
    _formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    handler.setFormatter(_formatter)
    records: queue.Queue[logging.LogRecord] = queue.Queue(QUEUE_SIZE)
    listener = logging.handlers.QueueListener(records, handler, respect_handler_level=False)
    for old in root.handlers:
        old.close()
    root.handlers[:] = [_DroppingQueueHandler(records)]
    root.setLevel(level.upper())
    for noisy in ("sanic.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    listener.start()
    atexit.register(listener.stop)  # writes what is queued before the process ends
