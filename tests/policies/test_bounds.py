"""policies.bounds and the bounded position pass: hostile input is refused before it is parsed."""

from __future__ import annotations

import time

import pytest

import policies.yaml_positions as yaml_positions
from policies.bounds import MAX_FILE_BYTES, MAX_FILES
from policies.loader import load_policy
from policies.problems import PolicyInvalid
from policies.yaml_positions import SourceMap

ROUTES = b"routes: {}\n"


def problems(files: dict[str, bytes]) -> list[str]:
    with pytest.raises(PolicyInvalid) as caught:
        load_policy(files)
    return [str(p) for p in caught.value.problems]


def test_a_file_over_the_size_bound_is_named_and_not_parsed() -> None:
    # Not YAML at all: a parse would report a syntax error, the bound reports the size.
    huge = b"keys: [\n" + b"x" * MAX_FILE_BYTES
    assert problems({"routes.yaml": ROUTES, "keys/huge.yaml": huge}) == [
        f"keys/huge.yaml:1:1: {len(huge):,} bytes: a policy file holds at most 8 MiB; "
        "split keys into several files under keys/, or remove what is not policy"
    ]


def test_too_many_files_names_the_directory_that_holds_them() -> None:
    files = {f"keys/k{i}.yaml": b"keys: []\n" for i in range(MAX_FILES)}
    [message] = problems({"routes.yaml": ROUTES, **files})
    assert message.startswith("keys/:1:1: 1,001 policy files: a policy holds at most 1,000")


def test_the_position_pass_stops_at_the_depth_bound_quickly() -> None:
    started = time.perf_counter()
    source = SourceMap.build("x: " + "[" * 200_000)  # over two minutes before the bound
    assert time.perf_counter() - started < 1
    assert [f.message.split(":")[0] for f in source.findings] == ["nested more than 32 levels deep"]
    assert problems({"routes.yaml": b"routes: " + b"{a: " * 50 + b"1" + b"}" * 50}) == [
        "routes.yaml:1:133: nested more than 32 levels deep: a policy needs a few levels of "
        "mappings and lists; check the brackets and indentation here"
    ]


def test_the_position_pass_maps_a_bounded_number_of_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(yaml_positions, "MAX_EVENTS", 10)
    source = SourceMap.build("a: 1\nb: [1, 2, 3, 4, 5, 6, 7, 8, 9]\nc: {d: 1}\n")
    assert source.position(("b",)) == (1, 3)  # mapped before the budget ran out
    assert source.position(("c", "d")) == (0, 0)  # not mapped: the document's start
