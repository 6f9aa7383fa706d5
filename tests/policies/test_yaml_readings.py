"""yaml_rs (the fast path) and ruamel.yaml (positions, editors) read policy YAML alike."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml_rs
from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError

SCALARS = {
    "no": "no",  # YAML 1.1 would read these as booleans
    "yes": "yes",
    "on": "on",
    "off": "off",
    "y": "y",
    "true": True,
    "False": False,
    "~": None,
    "null": None,
    "60": 60,
    "017": 17,  # YAML 1.1: octal 15
    "0o17": 15,
    "0x1F": 31,
    "1_000": 1000,  # both accept digit separators
    "1.5": 1.5,
    "1:20": "1:20",  # YAML 1.1: sexagesimal 80
    "gpt-4o*": "gpt-4o*",
    "'quoted'": "quoted",
}


def plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@pytest.mark.parametrize("text", list(SCALARS))
def test_scalars_read_the_same(text: str) -> None:
    document = f"value: {text}\n"
    fast = yaml_rs.loads(document, parse_datetime=False)
    round_trip = plain(YAML(typ="rt").load(document))
    assert fast == round_trip == {"value": SCALARS[text]}


def test_dates_agree() -> None:
    # yaml_rs keeps dates as text on the fast path (pydantic parses the date fields);
    # ruamel reads a date. Both mean 2027-06-30.
    fast = yaml_rs.loads("expires: 2027-06-30\n", parse_datetime=False)
    round_trip = YAML(typ="rt").load("expires: 2027-06-30\n")
    assert fast["expires"] == "2027-06-30"
    assert round_trip["expires"] == dt.date(2027, 6, 30)


def test_duplicate_keys_are_errors_for_both() -> None:
    with pytest.raises(yaml_rs.YAMLDecodeError):
        yaml_rs.loads("a: 1\na: 2\n")
    with pytest.raises(DuplicateKeyError):
        YAML(typ="rt").load("a: 1\na: 2\n")


def test_url_in_flow_mapping_reads_the_same() -> None:
    document = "p: {base_url: http://127.0.0.1:9/v1}\n"
    expected = {"p": {"base_url": "http://127.0.0.1:9/v1"}}
    assert yaml_rs.loads(document) == plain(YAML(typ="rt").load(document)) == expected
