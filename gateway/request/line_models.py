"""The upstream model a batch line may call: the key's allowlist and the route's operations,
as for a direct call of the line's endpoint, at the provider that holds the batch.

A line's model is resolved as a direct call's (request.pipeline.resolve_route: 404 for an
unknown model, then 403 for one the key may not use; request.operations for the endpoint);
it must then have a target at the batch route's holder, since the batch runs there, and the
line is sent with that target's upstream model.
"""

from __future__ import annotations

from gateway.errors import BadRequest
from gateway.protocols import ADAPTER_OF_TYPE
from gateway.request.files_upstream import holder
from gateway.request.model_names import check_model_name
from gateway.request.operations import check_operation
from gateway.request.pipeline import resolve_route
from gateway.vocabulary import Op
from policies.snapshot import Principal, ResolvedRoute, Snapshot

BATCH_ENDPOINTS: dict[str, Op] = {
    "/v1/chat/completions": Op.CHAT,
    "/v1/completions": Op.COMPLETIONS,
    "/v1/embeddings": Op.EMBEDDINGS,
    "/v1/responses": Op.RESPONSES,
    "/v1/moderations": Op.MODERATIONS,
}
"""The batch endpoints whose lines the gateway can check (OpenAI's image and video batch
endpoints are refused: their lines are not routed here yet)."""


def batch_op(url: str) -> Op:
    op = BATCH_ENDPOINTS.get(url)
    if op is None:
        served = ", ".join(BATCH_ENDPOINTS)
        raise BadRequest(f"'{url[:100]}' is not a batch endpoint on this gateway ({served}).")
    return op


class LineRouter:
    def __init__(self, snapshot: Snapshot, principal: Principal, batch_route: ResolvedRoute):
        self._snapshot, self._principal = snapshot, principal
        self._provider = holder(batch_route).provider_name

    def model_for(self, url: str, model: str) -> str:
        op = batch_op(url)
        check_model_name(model)
        route = check_operation(resolve_route(self._snapshot, self._principal, model), op)
        target = next((t for t in route.targets if t.provider_name == self._provider), None)
        if target is None:
            raise BadRequest(
                f"The model '{model}' is not served by the provider that runs this key's batches."
            )
        return ADAPTER_OF_TYPE[target.provider.type].body_model(target.upstream_model)
