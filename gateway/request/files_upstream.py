"""Which upstream holds a key's files and batches, and how the gateway calls it.

No model is named by /v1/files or /v1/batches, so the policy names the upstream: a route
marked `operations: [batches]`. A key's new files go to the first such route in routes.yaml
order that the key may use (its `models` allowlist names the route); a key with none gets
404. An existing file or batch is always called at the route it was created through (kept
in request.ownership), so a policy change never sends an id to a provider that lacks it.

Only the route's first target of type `openai` or `openai-compatible` is called: a file lives
at one provider, so there is no failover to another (retries and the provider's credential
pool still apply; its credentials must all reach the same files, one organization and
project). Azure OpenAI is left out: its files and batches live under /openai/files with an
api-version, and its batch lines name deployments, not models.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
import orjson

from gateway.errors import NotFound, UpstreamFailed
from gateway.upstream.dispatch import Dispatcher, ForwardHeaders, Opened, ResourceCall
from policies.models import ProviderType
from policies.snapshot import Principal, ResolvedRoute, Snapshot, Target

HOLDER_TYPES: frozenset[ProviderType] = frozenset({"openai", "openai-compatible"})
MAX_ANSWER_BYTES = 16 * 1024 * 1024
"""A file or batch object is small; a batch's `errors` list can run to megabytes."""


def batch_route(snapshot: Snapshot, principal: Principal) -> ResolvedRoute:
    """The route a key's new files go to: the first `batches` route it may use."""
    for name, route in snapshot.policy.routes.items():
        if route.operations is None or "batches" not in route.operations:
            continue
        if not principal.may_use(name):
            continue
        resolved = snapshot.resolve(name)
        if resolved is not None and _holder(resolved) is not None:
            return resolved
    raise NotFound(
        "No route on this gateway holds files and batches for your key: ask its operators "
        "for a route marked `operations: [batches]` your key may use."
    )


def held_route(snapshot: Snapshot, principal: Principal, name: str) -> ResolvedRoute | None:
    """The route an object was created through, while it is still a `batches` route the
    key may use (None otherwise: the object is out of reach, answered as missing)."""
    resolved = snapshot.resolve(name)
    if resolved is None or resolved.name != name or not principal.may_use(name):
        return None
    operations = resolved.route.operations
    if operations is None or "batches" not in operations or _holder(resolved) is None:
        return None
    return resolved


def holder(route: ResolvedRoute) -> Target:
    found = _holder(route)
    assert found is not None  # batch_route and held_route return only such routes
    return found


def _holder(route: ResolvedRoute) -> Target | None:
    return next((t for t in route.targets if t.provider.type in HOLDER_TYPES), None)


async def open_resource(
    dispatcher: Dispatcher,
    route: ResolvedRoute,
    call: ResourceCall,
    forwarded: ForwardHeaders | None,
) -> Opened:
    """The upstream's 2xx answer to `call` at the route's holder (an upstream 4xx is the
    client's error, raised as the dispatcher raises it)."""
    only = dataclasses.replace(route, targets=(holder(route),))
    return await dispatcher.open(only, False, lambda _target: call, forwarded)


async def read_object(opened: Opened) -> dict[str, Any]:
    """A JSON object answer, read whole (bounded) and closed."""
    body = bytearray()
    try:
        async with asyncio.timeout_at(opened.deadline):
            async for chunk in opened.response.aiter_raw():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise UpstreamFailed("The upstream's answer is larger than the gateway takes.")
    except (httpx.HTTPError, TimeoutError):
        raise UpstreamFailed("The upstream's answer broke off. Retry.") from None
    finally:
        await opened.response.aclose()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamFailed("The upstream answered with something that is not a JSON object.")
    return data
