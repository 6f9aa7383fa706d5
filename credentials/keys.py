"""Client keys and admin tokens: generation and hashing.

A secret is `mg-` and 43 url-safe characters (32 random bytes). Only its SHA-256 is ever
stored, as `sha256:<hex>`; the request path looks keys up by the bare hex digest.
"""

from __future__ import annotations

import hashlib
import re
import secrets

SECRET_PREFIX = "mg-"
HASH_PREFIX = "sha256:"

CLIENT_KEY_PATTERN = re.compile(r"(?<![A-Za-z0-9_\-])mg-[A-Za-z0-9_\-]{32,}(?![A-Za-z0-9_\-])")
"""Finds raw client keys or admin tokens inside larger text (e.g. a policy file)."""


def generate_secret() -> str:
    """A new client key or admin token: shown once, never stored."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def sha256_hex(secret: str) -> str:
    """The hex SHA-256 of the whole secret (what the request path looks up)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def hash_secret(secret: str) -> str:
    """The form stored in keys.yaml: `sha256:` and the hex digest."""
    return HASH_PREFIX + sha256_hex(secret)


def looks_like_client_key(text: str) -> bool:
    """Whether `text` (surrounding whitespace ignored) has the shape of a raw secret."""
    return CLIENT_KEY_PATTERN.fullmatch(text.strip()) is not None
