"""Which operations a route serves (its `operations:`), and which targets can serve one.

A route marked `operations: [images]` is an image model: a chat call to it is answered 404,
as OpenAI answers a model that does not serve the endpoint called ("This is not a chat
model..."): the name exists, but not for this operation, and a client that fails over on a
404 (model unavailable here) does the right thing. The check runs after the key's 403, so
it tells a key nothing about routes it may not use.

The media operations (moderations, images, audio, rerank) reach only OpenAI-family
providers: a route's other targets are left out, and a route with none left is a 400 that
names the provider types, as `offered` does for an operation a provider lacks.
"""

from __future__ import annotations

import dataclasses

from gateway.errors import NotFound, UnsupportedFeature
from gateway.protocols import PROTOCOL_OF_TYPE
from gateway.vocabulary import Op, Protocol
from policies.models import Operation
from policies.snapshot import ResolvedRoute

OPERATION_OF: dict[Op, Operation] = {
    Op.CHAT: "chat",
    Op.COMPLETIONS: "chat",
    Op.EMBEDDINGS: "embeddings",
    Op.RESPONSES: "chat",
    Op.COUNT_TOKENS: "chat",
    Op.MODERATIONS: "moderations",
    Op.IMAGES: "images",
    Op.IMAGE_EDITS: "images",
    Op.AUDIO_SPEECH: "audio",
    Op.AUDIO_TRANSCRIPTIONS: "audio",
    Op.AUDIO_TRANSLATIONS: "audio",
    Op.RERANK: "rerank",
}
"""The word of a route's `operations:` list that allows each operation."""

OPENAI_ONLY: frozenset[Op] = frozenset(
    {
        Op.MODERATIONS,
        Op.IMAGES,
        Op.IMAGE_EDITS,
        Op.AUDIO_SPEECH,
        Op.AUDIO_TRANSCRIPTIONS,
        Op.AUDIO_TRANSLATIONS,
        Op.RERANK,
    }
)
"""Operations only OpenAI-family providers offer (gateway/protocols/openai.py `_PATHS`)."""


def check_operation(route: ResolvedRoute, op: Op) -> ResolvedRoute:
    """`route` for a call of `op`: 404 when the route is not marked for it; for an
    OpenAI-only operation, narrowed to its OpenAI-family targets (400 when none is)."""
    allowed = route.route.operations
    word = OPERATION_OF[op]
    if allowed is not None and word not in allowed:
        served = ", ".join(allowed)
        raise NotFound(
            f"The model '{route.model}' does not serve {word} on this gateway "
            f"(it serves: {served}). GET /v1/models lists the models your key may use."
        )
    if op not in OPENAI_ONLY:
        return route
    kept = tuple(t for t in route.targets if PROTOCOL_OF_TYPE[t.provider.type] is Protocol.OPENAI)
    if not kept:
        kinds = ", ".join(sorted({t.provider.type for t in route.targets}))
        raise UnsupportedFeature(
            f"The model '{route.model}' is served by {kinds} providers, which do not offer "
            f"{word}; only OpenAI-type providers do."
        )
    if len(kept) == len(route.targets):
        return route
    return dataclasses.replace(route, targets=kept)
