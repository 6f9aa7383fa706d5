"""Where and how to call each provider type: the URL and headers of an upstream call (each
protocol's own in its adapter, gateway.protocols), and which targets can be called at all.

Every value put into an upstream URL is percent-encoded as one path segment (or query value),
and a model that must be a path segment is checked first (see gateway.request.model_names): a
client's name must never walk the upstream's path.
"""

from __future__ import annotations

import dataclasses

from gateway.errors import BadRequest
from gateway.protocols import ADAPTER_OF_TYPE
from gateway.request.model_names import model_name_problem, path_segment_problem
from gateway.vocabulary import Op
from policies.models import Provider
from policies.snapshot import ResolvedRoute


def upstream_url(provider: Provider, op: Op, model: str, stream: bool) -> str:
    return ADAPTER_OF_TYPE[provider.type].upstream_url(provider, op, model, stream)


def auth_headers(provider: Provider, secret: str | None) -> dict[str, str]:
    return ADAPTER_OF_TYPE[provider.type].auth_headers(provider, secret)


def routable(route: ResolvedRoute) -> ResolvedRoute:
    """`route` with only the targets whose upstream model is a valid name, and a valid path
    segment where the provider puts it in the URL; a 400 when no target is left."""
    problems = [_target_problem(t.provider, t.upstream_model) for t in route.targets]
    if all(p is None for p in problems):
        return route
    kept = tuple(t for t, p in zip(route.targets, problems, strict=True) if p is None)
    if not kept:
        problem = next(p for p in problems if p is not None)
        raise BadRequest(
            f"The model '{route.model}' maps to an upstream model name that cannot be sent: "
            f"{problem}. Use a model name from GET /v1/models.",
            param="model",
        )
    return dataclasses.replace(route, targets=kept)


def _target_problem(provider: Provider, upstream_model: str) -> str | None:
    if ADAPTER_OF_TYPE[provider.type].model_in_path(provider):
        return path_segment_problem(upstream_model)
    return model_name_problem(upstream_model)
