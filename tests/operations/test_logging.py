"""Log formatting: redaction of anything secret-shaped, and JSON/text lines."""

from __future__ import annotations

import hashlib
import json
import logging

from gateway.logs import JsonFormatter, TextFormatter, redact

KEY = "mg-" + "A1b2C3d4" * 5


def record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.makeLogRecord({"name": "modelgate.test", "msg": msg, "levelname": "INFO"})
    rec.__dict__.update(extra)
    return rec


def test_secret_shaped_text_is_masked() -> None:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    line = redact(f"key {KEY} hash sha256:{digest} url https://user:pw@host/v1 id abc123")
    assert KEY not in line and digest not in line and "pw@" not in line
    assert "mg-[redacted]" in line and "https://[redacted]@host/v1" in line
    assert "id abc123" in line
    commit = "85a35cf513acaf0fe56e2af60537fdc90c453b30"  # 40 hex: a commit, kept
    assert redact(f"policy {commit} applied") == f"policy {commit} applied"


def test_json_lines_carry_extras_and_are_redacted() -> None:
    line = JsonFormatter().format(record("seen %s", key_id="alice", leaked=KEY))
    data = json.loads(line)
    assert data["logger"] == "modelgate.test" and data["key_id"] == "alice"
    assert data["leaked"] == "mg-[redacted]"


def test_text_lines_carry_extras_and_are_redacted() -> None:
    line = TextFormatter().format(record(f"presented {KEY}", status=401))
    assert "status=401" in line and KEY not in line
