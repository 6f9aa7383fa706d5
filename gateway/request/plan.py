"""Stage ④: what goes upstream to one target, decided without doing any I/O.

`plan(call, target)` is pure: the upstream operation (its URL), the upstream body, and what
the answer needs on its way back (a translation, or a usage chunk to hide). A request's
`Plans` make each target's plan once, when the dispatcher first tries that target; a large
body is planned for every target on a worker thread first, so that no translation of
megabytes runs on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.errors import GatewayError, UnsupportedFeature
from gateway.protocols import ADAPTER_OF_TYPE
from gateway.request.call import Call
from gateway.request.translation import LARGE_BODY_BYTES, Translation, dump_body
from gateway.translate import dialect
from gateway.translate.embeddings import EmbeddingsTranslation
from gateway.vocabulary import Op
from gateway.vocabulary import Protocol as Wire
from policies.snapshot import Target


class AnswerTranslation(Protocol):
    """What turns a provider's whole answer into the client's (translation, embeddings,
    token counts)."""

    def client_body(self, upstream: Any, client_model: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Plan:
    op: Op
    """What the upstream is asked for (its URL): not always the client's operation."""
    body: bytes
    answer: AnswerTranslation | None = None
    """How the answer becomes the client's; None: it passes through as it came."""
    dropped: frozenset[str] = frozenset()
    """The client's hints the provider's dialect cannot carry (x-modelgate-dropped-params)."""
    hide_usage_chunk: bool = False
    """The gateway asked an OpenAI upstream for a usage chunk the client did not ask for."""


Planner = Callable[[Call, Target], Plan]


def plan(call: Call, target: Target) -> Plan:
    """The upstream call of a generation or embeddings request to `target`."""
    provider = target.provider
    adapter = ADAPTER_OF_TYPE[provider.type]
    op = adapter.upstream_op(provider, call.op)
    model = target.upstream_model
    if call.op is Op.EMBEDDINGS and EmbeddingsTranslation.needed(call.protocol, adapter.protocol):
        embeddings = EmbeddingsTranslation(call.protocol, adapter.protocol, call.body)
        body, _ = embeddings.upstream_request(model)
        return Plan(op, dump_body(adapter.finish_body(provider, op, body)), embeddings)
    client, upstream = dialect(call.protocol, call.op), dialect(adapter.protocol, op)
    if client != upstream:
        if call.op is Op.COMPLETIONS:
            raise UnsupportedFeature(
                "/v1/completions reaches only OpenAI-type providers that serve chat "
                "completions; this route's provider speaks another API. Use "
                "/v1/chat/completions."
            )
        translation = Translation(client, upstream, call.body, call.stream, call.strict)
        body, dropped = translation.upstream_request(model)
        return Plan(op, dump_body(adapter.finish_body(provider, op, body)), translation, dropped)
    changes: dict[str, Any] = {}
    if adapter.protocol is not Wire.GEMINI and call.body.get("model") != model:
        changes["model"] = adapter.body_model(model)
    hide = call.stream and op in (Op.CHAT, Op.COMPLETIONS) and _asks_usage_chunk(call, upstream)
    if hide:
        # Usage is what quotas count: ask for it, and hide the extra chunk from the client.
        options = call.body.get("stream_options")
        changes["stream_options"] = {
            **(options if isinstance(options, dict) else {}),
            "include_usage": True,
        }
    finished = adapter.finish_body(provider, op, {**call.body, **changes} if changes else call.body)
    if finished is call.body and adapter.protocol is Wire.GEMINI:
        return Plan(op, call.raw)  # the model and streaming are in the URL: bytes as they came
    # Written anew even when nothing changed: parsers differ on duplicate keys (orjson keeps
    # the last, others the first), so in the client's bytes an upstream could read another
    # model, or `stream`, than the one the gateway checked and relays (about as fast as
    # scanning the bytes for duplicates would be: ~1 ms per MB).
    return Plan(op, dump_body(finished), hide_usage_chunk=hide)


def _asks_usage_chunk(call: Call, upstream: str) -> bool:
    """An OpenAI chat stream the client did not ask usage of (the gateway will)."""
    if upstream != Wire.OPENAI.value:
        return False
    options = call.body.get("stream_options")
    return not (isinstance(options, dict) and options.get("include_usage") is True)


class Plans:
    """One request's plans, one per target the dispatcher tries, each made once.

    Called by the dispatcher with the target it is about to try; a plan's error is raised
    for that target only, since failover may still succeed with another."""

    def __init__(self, call: Call, planner: Planner = plan) -> None:
        self._call, self._planner = call, planner
        self._made: dict[tuple[str, str], Plan | GatewayError] = {}

    async def prepare(self, targets: tuple[Target, ...]) -> None:
        """A large body is planned for every target at once, off the loop."""
        if len(self._call.raw) > LARGE_BODY_BYTES:
            self._made = await asyncio.to_thread(self._plan_all, targets)

    def _plan_all(self, targets: tuple[Target, ...]) -> dict[tuple[str, str], Plan | GatewayError]:
        made: dict[tuple[str, str], Plan | GatewayError] = {}
        for target in targets:
            try:
                made[target.provider_name, target.upstream_model] = self._planner(
                    self._call, target
                )
            except GatewayError as err:
                made[target.provider_name, target.upstream_model] = err
        return made

    def __call__(self, target: Target) -> Plan:
        key = (target.provider_name, target.upstream_model)
        found = self._made.get(key)
        if found is None:
            found = self._made[key] = self._planner(self._call, target)
        if isinstance(found, GatewayError):
            raise found
        return found
