"""A request's usage is counted against its limits exactly once, however often settled."""

from __future__ import annotations

import asyncio

from gateway.errors import Protocol
from gateway.limits import Admission
from gateway.limits.memory import MemoryLimiter
from gateway.request.exchange import Exchange
from gateway.request.settlement import Settlement
from gateway.usage.tokens import Usage
from policies.models import Limits
from policies.scopes import key_scopes


def exchange(usage: Usage) -> Exchange:
    return Exchange("req-1", Protocol.OPENAI, 0.0, 0.0, usage=usage)


class Recording:
    def __init__(self) -> None:
        self.settled: list[int] = []

    def settled_at_once(self, admission: Admission, used_tokens: int, cost: int | None) -> bool:
        return False  # like Redis: settled by awaiting `settle`

    async def settle(
        self, admission: Admission, used_tokens: int, cost_micros: int | None = 0
    ) -> None:
        await asyncio.sleep(0)
        self.settled.append(used_tokens)


def test_settling_twice_counts_once_with_the_usage_of_the_first_settle() -> None:
    limiter = Recording()
    usage = Usage(prompt_tokens=5, completion_tokens=3)

    async def run() -> None:
        settlement = Settlement(limiter, Admission((), 0), exchange(usage))  # type: ignore[arg-type]
        await asyncio.gather(settlement.settle(), settlement.settle())
        usage.completion_tokens = 100  # after the stream's end: not counted again
        await settlement.settle()

    asyncio.run(run())
    assert limiter.settled == [8]


def test_a_cancelled_waiter_does_not_cut_the_count_short() -> None:
    limiter = Recording()

    async def run() -> None:
        settlement = Settlement(limiter, Admission((), 0), exchange(Usage(prompt_tokens=2)))  # type: ignore[arg-type]
        waiter = asyncio.ensure_future(settlement.settle())
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.sleep(0.01)

    asyncio.run(run())
    assert limiter.settled == [2]


def test_an_in_memory_limiter_is_settled_without_a_task() -> None:
    limiter = MemoryLimiter(None)
    scopes = key_scopes("k", Limits(tokens_per_day=1000))

    async def run() -> int:
        admission = await limiter.admit(scopes, 10)
        settlement = Settlement(limiter, admission, exchange(Usage(prompt_tokens=30)))
        tasks = len(asyncio.all_tasks())
        await settlement.settle()
        assert len(asyncio.all_tasks()) == tasks  # no task was made for the count
        await settlement.settle()  # a second settle counts nothing more
        return limiter.usage("k", Limits(tokens_per_day=1000))["tokens_per_day"]["used"]

    assert asyncio.run(run()) == 30
