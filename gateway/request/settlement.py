"""Stage ⑦'s count: a request's usage settled against its limits, exactly once, and priced.

A stream settles before its last event reaches the client (so that the key's next request,
which a client sends the moment it sees the end, is admitted against this one's tokens);
every other request when the pipeline ends, whatever happened. The count is shielded:
neither a total timeout nor a client that leaves can cut it short. The cost is computed
from the same usage at the same moment (Exchange.priced, from the target's compiled price).
"""

from __future__ import annotations

import asyncio

from gateway.limits import Admission, Limiter
from gateway.request.exchange import Exchange


class Settlement:
    __slots__ = ("_admission", "_exchange", "_limiter", "_started", "_task")

    def __init__(self, limiter: Limiter, admission: Admission, exchange: Exchange) -> None:
        self._limiter, self._admission, self._exchange = limiter, admission, exchange
        self._started = False
        self._task: asyncio.Future[None] | None = None
        """The count in flight (Redis); None once done at once (in memory)."""
        exchange.admitted(admission)  # the shadow limits it passed, for the event and the log

    @property
    def cost_micros(self) -> int | None:
        """The request's cost once settled, in micro-dollars (None: unknown or not yet)."""
        return self._exchange.cost_micros if self._started else None

    @property
    def settled(self) -> bool:
        """The count is done: settle() would not wait."""
        return self._started and (self._task is None or self._task.done())

    async def settle(self) -> None:
        """Count the usage as it stands now (later calls wait for the first one's count)."""
        if not self._started:
            self._started = True
            ex = self._exchange
            ex.priced()
            limiter, admission = self._limiter, self._admission
            if limiter.settled_at_once(admission, ex.usage.total, ex.cost_micros):
                return  # in memory: nothing to wait for, so nothing a cancel could cut
            self._task = asyncio.ensure_future(
                limiter.settle(admission, ex.usage.total, ex.cost_micros)
            )
        if self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
