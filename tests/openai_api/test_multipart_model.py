"""The `model` field found in a multipart body fed in pieces of any size."""

from __future__ import annotations

import random

import pytest

from gateway.errors import BadRequest
from gateway.request.multipart_model import ModelFieldScanner, boundary_of

BOUNDARY = "----formdata-7d1"


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if filename:
        head += "Content-Type: application/octet-stream\r\n"
    return head.encode() + b"\r\n" + value + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def scan(data: bytes, seed: int) -> ModelFieldScanner:
    scanner = ModelFieldScanner(BOUNDARY.encode())
    pieces = random.Random(seed)
    at = 0
    while at < len(data):
        size = pieces.randint(1, 9)
        if scanner.feed(data[at : at + size]):
            break
        at += size
    else:
        scanner.finish()
    return scanner


@pytest.mark.parametrize("seed", range(20))
def test_the_models_span_is_found_in_any_pieces(seed: int) -> None:
    file = b"--" + BOUNDARY.encode()[:-1] + b"\r\nmodel\r\n" * 50  # almost a delimiter
    data = body(
        part("file", file, "a.mp3"),
        part("model", b"fake", "model.txt"),  # a file named model is not the field
        part("language", b""),
        part("model", "whisper-ü".encode()),
        part("prompt", b"hi"),
    )
    scanner = scan(data, seed)
    assert scanner.model == "whisper-ü"
    assert scanner.span is not None
    start, end = scanner.span
    assert data[start:end] == "whisper-ü".encode()


def test_an_empty_model_value_is_found_empty() -> None:
    data = body(part("model", b""), part("file", b"x", "a"))
    scanner = scan(data, 1)
    assert scanner.model == "" and scanner.span is not None
    assert scanner.span[0] == scanner.span[1]


def test_a_body_without_model_is_a_400() -> None:
    with pytest.raises(BadRequest, match="'model' is required"):
        scan(body(part("file", b"abc", "a.mp3")), 1)


def test_a_long_model_is_refused_without_holding_it() -> None:
    with pytest.raises(BadRequest, match="too long"):
        scan(body(part("model", b"m" * 100_000)), 1)


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "multipart/form-data", "multipart/mixed; boundary=x", ""],
)
def test_only_multipart_form_data_with_a_boundary_is_taken(content_type: str) -> None:
    with pytest.raises(BadRequest):
        boundary_of(content_type)


def test_a_quoted_boundary_is_read() -> None:
    assert boundary_of('multipart/form-data; boundary="a b:c"') == b"a b:c"
