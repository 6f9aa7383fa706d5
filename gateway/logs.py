"""Logging set-up: human text or one JSON object per line, written by a background thread.

The serving loop only hands records to a bounded queue (a full queue drops the record and
counts it), so a slow or blocked stderr never stalls requests. Every line passes a last
redaction step: anything shaped like a client key (`mg-...`), a SHA-256 hex digest or a URL
with a password is masked, whatever a caller put in a message.
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

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
QUEUE_SIZE = 10_000

_CLIENT_KEY = re.compile(r"mg-[A-Za-z0-9_-]{16,}")
_SHA256_HEX = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")
_URL_PASSWORD = re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)")
# Hex digits to "1", anything else to "0": a line holds no SHA-256 digest unless its mask
# holds 64 ones in a row, which a byte search finds 20 times faster than the regex.
_HEX_MASK = bytes(0x31 if chr(i) in string.hexdigits else 0x30 for i in range(256))
_HEX_RUN = b"1" * 64


def redact(line: str) -> str:
    """Mask client keys, SHA-256 digests and URL passwords in a finished log line.

    Each pattern is searched separately, and only when a cheap test says it may be there:
    one combined pattern costs several times more per line.
    """
    if "mg-" in line:
        line = _CLIENT_KEY.sub("mg-[redacted]", line)
    if _HEX_RUN in line.encode("utf-8", "surrogatepass").translate(_HEX_MASK):
        line = _SHA256_HEX.sub("[redacted-sha256]", line)
    if "@" in line:
        line = _URL_PASSWORD.sub("[redacted]", line)
    return line


MAX_LOGGED_TEXT = 200
ACCESS_BATCH = "access_batch"
"""The attribute of a log record that carries many finished requests' access lines."""


def _safe_text(value: str | None) -> str | None:
    """A client-chosen string fit for a log line: printable and short (no forged lines)."""
    if value is None or (value.isprintable() and len(value) <= MAX_LOGGED_TEXT):
        return value
    return repr(value[:MAX_LOGGED_TEXT])


def access_fields(event: dict[str, Any]) -> dict[str, Any]:
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


def access_batch_record(name: str, events: list[dict[str, Any]]) -> logging.LogRecord:
    """One record for many access lines (built directly: `Logger.info` walks the stack)."""
    record = logging.LogRecord(name, logging.INFO, __file__, 0, "requests finished", None, None)
    setattr(record, ACCESS_BATCH, events)
    return record


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    if record.exc_info:
        return formatter.formatException(record.exc_info)
    return record.exc_text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
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
        return redact(orjson.dumps(data, default=str).decode())

    @staticmethod
    def _access_line(logger: str, event: dict[str, Any]) -> str:
        data = {
            "ts": round(event["ts"], 3),
            "level": "info",
            "logger": logger,
            "msg": "request finished",
            **access_fields(event),
        }
        return orjson.dumps(data).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        batch = record.__dict__.get(ACCESS_BATCH)
        if batch is not None:
            return redact("\n".join(self._access_line(record.name, event) for event in batch))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        extra = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD)
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extra:
            line += f" [{extra}]"
        exc = _exception_text(self, record)
        if exc:
            line += "\n" + exc
        return redact(line)

    @staticmethod
    def _access_line(logger: str, event: dict[str, Any]) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(event["ts"]))
        extra = " ".join(f"{k}={v}" for k, v in access_fields(event).items())
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


def configure_logging(level: str, fmt: str) -> None:
    """Root logging to stderr through a background writer thread (stopped at exit).

    Once per process: a worker process (forked or spawned) calls it again to get its own
    writer thread; a second call in the same process does nothing.
    """
    root = logging.getLogger()
    if any(getattr(h, "pid", None) == os.getpid() for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
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
