"""The model-name grammar, path-segment URLs, and globs whose wildcards never cross a `/`."""

from __future__ import annotations

import fnmatch
import re
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import BadRequest
from gateway.request.model_names import (
    MAX_MODEL_NAME_LENGTH,
    check_model_name,
    model_name_problem,
    path_segment_problem,
)
from gateway.upstream.endpoints import routable, upstream_url
from gateway.vocabulary import Op
from policies.crosscheck import Parsed, cross_check
from policies.model_globs import compile_any, compile_glob
from policies.models import Key, Policy, Provider, Route, RoutesFile
from policies.snapshot import Snapshot

BOUNDED = settings(max_examples=300, deadline=None, derandomize=True)

VALID = [
    "gpt-4o",
    "meta-llama/Llama-3.1-8B",
    "llama3:8b",
    "ft:gpt-4o-mini:org::abc123",
    "gemini-1.5-pro",
    "models/gemini-1.5-pro",
    "qwen2.5-7b@q4_k_m",
    "模型-1",
    "a" * MAX_MODEL_NAME_LENGTH,
]
HOSTILE = [
    "",
    "a" * (MAX_MODEL_NAME_LENGTH + 1),
    "gemini-1.5-x/../../gemini-pro",
    "gemini-1.5-%2e%2e%2fgemini-pro",
    "gemini-1.5-a:generateContent?",
    "gemini-1.5-a#frag",
    "..",
    ".",
    "./gemini-pro",
    "a/./b",
    "/gemini-pro",
    "gemini-pro/",
    "a//b",
    "gpt 4o",
    "gpt-4o\t",
    "gpt-4o\nHost: evil",
    "gpt-4o\r",
    "gpt\x00",
    "gpt\x7f",
    "gpt\u0085",  # NEL
    "gpt\u200b4o",  # zero-width space
    "gpt\u202e4o",  # right-to-left override
    "gpt\u2028",  # line separator
    "gpt\u00a04o",  # no-break space
]


@pytest.mark.parametrize("name", VALID)
def test_ordinary_names_are_valid(name: str) -> None:
    assert model_name_problem(name) is None
    check_model_name(name)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_with_a_400_that_does_not_echo_them(name: str) -> None:
    assert model_name_problem(name) is not None
    with pytest.raises(BadRequest) as refused:
        check_model_name(name)
    assert refused.value.param == "model"
    assert "GET /v1/models" in refused.value.message
    if len(name) > 3:
        assert name not in refused.value.message


@pytest.mark.parametrize(
    "name", ["meta-llama/Llama-3.1-8B", "gemini-1.5-x:countTokens", "a\\b", "模型", "x/y"]
)
def test_a_path_segment_takes_no_slash_colon_backslash_or_non_ascii(name: str) -> None:
    assert model_name_problem(name) is None
    assert path_segment_problem(name) is not None


@pytest.mark.parametrize("name", ["gemini-1.5-pro", "gpt-4o_deploy.v2", "claude@1"])
def test_ordinary_model_ids_are_path_segments(name: str) -> None:
    assert path_segment_problem(name) is None


GEMINI = Provider(type="gemini", base_url="https://generativelanguage.googleapis.com")
AZURE = Provider(type="azure-openai", base_url="https://r.openai.azure.com", api_version="a/b?c")
OPENAI = Provider(type="openai-compatible", base_url="http://127.0.0.1:9/v1")


@BOUNDED
@given(st.text(min_size=1, max_size=40))
def test_a_model_in_an_upstream_url_is_exactly_one_path_segment(name: str) -> None:
    for provider, before in ((GEMINI, "/v1beta/models/"), (AZURE, "/openai/deployments/")):
        try:
            url = httpx.URL(upstream_url(provider, Op.CHAT, name, False))
        except BadRequest:
            assert path_segment_problem(name) is not None
            continue
        raw = url.raw_path.decode()
        assert raw.startswith(before)
        segment = raw.removeprefix(before).split("/")[0].split("?")[0]
        if provider is GEMINI:
            segment = segment.removesuffix(":generateContent")
        assert unquote(segment) == name
        assert _ENCODED_SEGMENT.fullmatch(segment), segment


_ENCODED_SEGMENT = re.compile(r"(?:[A-Za-z0-9._~-]|%[0-9A-F]{2})+")
"""A path segment with everything but RFC 3986's unreserved characters percent-encoded."""


def test_sub_delimiters_in_a_model_are_encoded_too() -> None:
    url = upstream_url(GEMINI, Op.COUNT_TOKENS, "a;b=c&d'(e)!", False)
    assert url.endswith("/v1beta/models/a%3Bb%3Dc%26d%27%28e%29%21:countTokens")


def test_the_azure_api_version_is_encoded_as_a_query_value() -> None:
    url = upstream_url(AZURE, Op.CHAT, "deploy", False)
    assert url.endswith("/openai/deployments/deploy/chat/completions?api-version=a%2Fb%3Fc")


@pytest.mark.parametrize(
    ("pattern", "name"),
    [
        ("gemini-1.5-*", "gemini-1.5-x/../../gemini-pro"),
        ("gemini-1.5-*", "gemini-1.5-x/y"),
        ("gemini-?", "gemini-/"),
        ("gemini-[!a]", "gemini-/"),
        ("gemini-[+-0]", "gemini-/"),  # a range that spans '/'
        ("*", "meta-llama/Llama-3.1-8B"),
    ],
)
def test_no_wildcard_crosses_a_slash(pattern: str, name: str) -> None:
    assert fnmatch.fnmatchcase(name, pattern)  # what the gateway used to do
    assert compile_glob(pattern).fullmatch(name) is None
    assert compile_any([pattern]).fullmatch(name) is None


def test_a_slash_is_matched_when_the_glob_writes_it() -> None:
    assert compile_any(["meta-llama/*"]).fullmatch("meta-llama/Llama-3.1-8B")
    assert compile_glob("*/*").fullmatch("meta-llama/Llama-3.1-8B")


GLOB_CHARS = st.sampled_from(list("ab-.*?[]!"))


@BOUNDED
@given(st.text(GLOB_CHARS, max_size=8), st.text(st.sampled_from(list("ab-.[]!")), max_size=8))
def test_without_slashes_globs_match_as_fnmatch_does(pattern: str, name: str) -> None:
    expected = fnmatch.fnmatchcase(name, pattern)
    assert (compile_glob(pattern).fullmatch(name) is not None) is expected
    assert (compile_any([pattern]).fullmatch(name) is not None) is expected


def snapshot(routes: dict[str, list[str]], key_models: tuple[str, ...] | None = None) -> Snapshot:
    policy = Policy(
        providers={"gemini": GEMINI, "azure": AZURE, "open": OPENAI},
        routes={name: Route(targets=tuple(targets)) for name, targets in routes.items()},
        keys=(Key(id="k", hash="sha256:" + "0" * 64, models=key_models),),
    )
    return Snapshot.compile(policy, "c0")


def test_a_route_glob_substitutes_what_its_first_star_matched() -> None:
    snap = snapshot({"gemini-*": ["gemini/gemini-*"], "x-*-y-*": ["open/z-*"]})
    route = snap.resolve("gemini-2.0-flash")
    assert route is not None and route.targets[0].upstream_model == "gemini-2.0-flash"
    route = snap.resolve("x-1-y-2")
    assert route is not None and route.targets[0].upstream_model == "z-1"
    assert snap.resolve("gemini-1.5-x/../../gemini-pro") is None


def test_a_key_glob_does_not_cross_a_slash() -> None:
    snap = snapshot({"gemini-*": ["gemini/gemini-*"]}, key_models=("gemini-1.5-*",))
    principal = snap.principal("0" * 64)
    assert principal is not None
    assert principal.may_use("gemini-1.5-flash")
    assert not principal.may_use("gemini-1.5-x/../../gemini-pro")
    assert not principal.may_use("gemini-pro")


def test_targets_that_put_the_model_in_a_path_are_dropped_for_a_name_with_a_slash() -> None:
    snap = snapshot({"org/*": ["open/org/*", "gemini/org/*"], "solo-*": ["azure/*"]})
    both = snap.resolve("org/Llama-3.1-8B")
    assert both is not None and len(both.targets) == 2
    kept = routable(both)
    assert [t.upstream_model for t in kept.targets] == ["org/Llama-3.1-8B"]
    assert [t.provider_name for t in kept.targets] == ["open"]
    solo = snap.resolve("solo-x:generateContent")
    assert solo is not None
    with pytest.raises(BadRequest, match="URL path"):
        routable(solo)


def test_an_empty_star_is_not_sent_upstream() -> None:
    route = snapshot({"gemini-*": ["gemini/*"]}).resolve("gemini-")
    assert route is not None and route.targets[0].upstream_model == ""
    with pytest.raises(BadRequest, match="empty"):
        routable(route)


def test_policy_check_validates_globs_with_the_serving_rules() -> None:
    routes = RoutesFile(
        routes={"a[": Route(targets=("open/x",)), "b[z-a]": Route(targets=("open/y",))}
    )
    issues = cross_check(Parsed(None, ("routes.yaml", routes), None, ()), lambda f, loc: f)
    messages = sorted(i.message for i in issues)
    assert "never closed" in messages[0] and "reversed" in messages[1]
