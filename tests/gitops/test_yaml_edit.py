"""policies.yaml_edit: one entry changes, every other byte stays."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml_rs

from policies.edit_files import EditedFiles
from policies.yaml_edit import append, delete, set_value
from policies.yaml_render import render_scalar

HASH = "sha256:" + "ab" * 32


def load(text: str) -> object:
    return yaml_rs.loads(text, parse_datetime=False)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("search@example.com", "search@example.com"),
        (HASH, HASH),
        ("gpt-4o*", '"gpt-4o*"'),
        ("yes", '"yes"'),
        ("2027-06-30", '"2027-06-30"'),
        ("12", '"12"'),
        ("a: b", '"a: b"'),
        (dt.date(2027, 6, 30), "2027-06-30"),
        (True, "true"),
        (300, "300"),
    ],
)
def test_scalars_read_back_as_written(value: object, text: str) -> None:
    assert render_scalar(value) == text
    if not isinstance(value, dt.date):
        assert load(f"v: {text}") == {"v": value}


def test_quotes_are_kept_when_a_value_changes() -> None:
    text = "a: 'one'  # note\nb: \"two\"\nc: three\n"
    text = set_value(set_value(set_value(text, ["a"], "uno"), ["b"], "dos"), ["c"], "tres")
    assert text == "a: 'uno'  # note\nb: \"dos\"\nc: tres\n"


def test_crlf_files_stay_crlf() -> None:
    text = "keys:\r\n  - id: a\r\n    hash: h\r\n"
    new = set_value(append(text, ["keys"], {"id": "b", "hash": "h2"}), ["keys", 0, "tier"], "x")
    assert (
        new == "keys:\r\n  - id: a\r\n    hash: h\r\n    tier: x\r\n  - id: b\r\n    hash: h2\r\n"
    )


def test_empty_and_missing_containers() -> None:
    assert append("", ["keys"], {"id": "a"}) == "keys:\n  - id: a\n"
    assert append("keys: []\n", ["keys"], {"id": "a"}) == "keys:\n  - id: a\n"
    assert append("keys:\n", ["keys"], {"id": "a"}) == "keys:\n  - id: a\n"
    assert set_value("tiers:\n", ["tiers", "gold"], {"rpm": 1}) == "tiers:\n  gold: {rpm: 1}\n"
    assert set_value("tiers: {}\n", ["tiers", "gold"], {"rpm": 1}) == "tiers: {gold: {rpm: 1}}\n"
    assert set_value("x: 1\n", ["tiers", "gold"], {"rpm": 1}) == "x: 1\ntiers:\n  gold: {rpm: 1}\n"


def test_deletes() -> None:
    flow = "default: {rpm: 1, tpm: 2, max_concurrency: 3}\n"
    assert delete(flow, ["default", "tpm"]) == "default: {rpm: 1, max_concurrency: 3}\n"
    assert delete(flow, ["default", "max_concurrency"]) == "default: {rpm: 1, tpm: 2}\n"
    assert delete("models: [a, b]\n", ["models", 0]) == "models: [b]\n"
    assert delete("tiers:\n  gold: {rpm: 1}\n", ["tiers", "gold"]) == "tiers:\n  {}\n"
    assert load(delete("tiers:\n  gold: {rpm: 1}\n", ["tiers", "gold"])) == {"tiers": {}}
    text = "keys:\n  - id: a\n\n  - id: b\n\n# end\n"
    assert delete(text, ["keys", 1]) == "keys:\n  - id: a\n\n# end\n"
    assert delete(text, ["keys", 0, "id"]) == "keys:\n  - {}\n\n  - id: b\n\n# end\n"


def test_a_block_list_is_replaced_in_block_style() -> None:
    text = "models:\n  - a   # first\n  - b\nnext: 1\n"
    assert set_value(text, ["models"], ["c", "d*"]) == 'models:\n  - c\n  - "d*"\nnext: 1\n'


def test_bom_survives_an_edit() -> None:
    original = b"\xef\xbb\xbfkeys:\n  - id: a\n    hash: " + HASH.encode() + b"\n"
    files = EditedFiles({"keys.yaml": original})
    files.update_key("a", {"disabled": True})
    assert files.current()["keys.yaml"] == original + b"    disabled: true\n"
