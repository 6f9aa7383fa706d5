"""Client key generation and hashing."""

from __future__ import annotations

import hashlib
import re

from credentials.keys import (
    CLIENT_KEY_PATTERN,
    generate_secret,
    hash_secret,
    looks_like_client_key,
    sha256_hex,
)


def test_generated_secrets_have_the_documented_shape_and_differ() -> None:
    first, second = generate_secret(), generate_secret()
    assert first != second
    for secret in (first, second):
        assert re.fullmatch(r"mg-[A-Za-z0-9_\-]{43}", secret)
        assert looks_like_client_key(secret)


def test_hash_is_sha256_of_the_whole_secret() -> None:
    # The contract's example: sha256("foo").
    expected = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
    assert sha256_hex("foo") == expected
    assert hash_secret("foo") == "sha256:" + expected
    secret = generate_secret()
    assert hash_secret(secret) == "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def test_looks_like_client_key_refuses_other_text() -> None:
    assert looks_like_client_key("  " + "mg-" + "a" * 32 + "\n")
    for text in ("mg-short", "sk-" + "a" * 40, "mg-" + "a" * 31, "xmg-" + "a" * 40, ""):
        assert not looks_like_client_key(text), text


def test_pattern_finds_a_key_inside_text() -> None:
    secret = generate_secret()
    text = f"keys:\n  - id: a\n    hash: {secret}  # oops\n"
    match = CLIENT_KEY_PATTERN.search(text)
    assert match is not None and match.group(0) == secret
    assert CLIENT_KEY_PATTERN.search("hash: sha256:" + "ab" * 32) is None
