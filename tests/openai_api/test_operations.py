"""A route's `operations:` and the providers that offer an operation (request.operations)."""

from __future__ import annotations

import pytest

from gateway.errors import NotFound, UnsupportedFeature
from gateway.request.operations import OPERATION_OF, check_operation
from gateway.vocabulary import Op
from policies.models import Provider, Route
from policies.snapshot import ResolvedRoute, Target


def target(kind: str, name: str) -> Target:
    provider = Provider.model_validate(
        {"type": kind, "base_url": "https://upstream.example", "credentials": ["env:K"]}
    )
    return Target(name, provider, name + "-model")


def resolved(*targets: Target, operations: list[str] | None = None) -> ResolvedRoute:
    spec = {"targets": [t.label for t in targets]}
    if operations is not None:
        spec["operations"] = operations
    return ResolvedRoute("r", "r", Route.model_validate(spec), targets)


def test_every_operation_has_its_word() -> None:
    assert set(OPERATION_OF) == set(Op)


def test_a_route_without_operations_serves_all() -> None:
    route = resolved(target("openai", "o"))
    for op in Op:
        assert check_operation(route, op) is route


def test_a_route_marked_for_some_operations_refuses_others_with_404() -> None:
    route = resolved(target("openai", "o"), operations=["images"])
    assert check_operation(route, Op.IMAGE_EDITS) is route
    with pytest.raises(NotFound, match="does not serve chat"):
        check_operation(route, Op.CHAT)
    with pytest.raises(NotFound, match=r"serve embeddings on this gateway \(it serves: images\)"):
        check_operation(route, Op.EMBEDDINGS)


def test_chat_covers_every_text_generation_and_its_token_counts() -> None:
    route = resolved(target("anthropic", "a"), operations=["chat"])
    for op in (Op.CHAT, Op.COMPLETIONS, Op.RESPONSES, Op.COUNT_TOKENS):
        assert check_operation(route, op) is route


def test_media_operations_keep_only_openai_family_targets() -> None:
    mixed = resolved(target("anthropic", "a"), target("azure-openai", "z"))
    kept = check_operation(mixed, Op.AUDIO_SPEECH)
    assert [t.provider_name for t in kept.targets] == ["z"]
    assert check_operation(mixed, Op.CHAT) is mixed
    with pytest.raises(UnsupportedFeature, match="anthropic providers"):
        check_operation(resolved(target("anthropic", "a")), Op.RERANK)


def test_an_unknown_operation_word_is_refused_by_the_policy() -> None:
    with pytest.raises(ValueError, match="operations"):
        Route.model_validate({"targets": ["p/m"], "operations": ["video"]})
