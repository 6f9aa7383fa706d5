"""EventFanout against a real redis-server: workers see each other's events, never their own,
and a Redis outage costs events, not requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.usage import fanout as fanout_module
from gateway.usage.fanout import EventFanout
from tests.support.redis_server import RedisServer

Event = dict[str, Any]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def running(fanout: EventFanout) -> AsyncIterator[EventFanout]:
    task = asyncio.create_task(fanout.run())
    try:
        yield fanout
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(condition: Callable[[], bool], seconds: float = 5) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition still false after {seconds} s")


def worker(redis_server: RedisServer, channel: str = "test") -> tuple[EventFanout, list[Event]]:
    applied: list[Event] = []
    return EventFanout(redis_server.url, applied.extend, channel=channel), applied


async def test_each_worker_applies_the_others_events_and_not_its_own(
    redis_server: RedisServer,
) -> None:
    (a, seen_by_a), (b, seen_by_b) = worker(redis_server), worker(redis_server)
    (other, seen_by_other) = worker(redis_server, channel="another-gateway")
    async with running(a), running(b), running(other):
        await asyncio.sleep(0.3)  # subscribed
        for n in range(3):
            a.send({"request_id": f"a{n}"})
        b.send({"request_id": "b0"})
        await eventually(lambda: len(seen_by_b) == 3 and len(seen_by_a) == 1)
        await asyncio.sleep(0.3)
    assert [e["request_id"] for e in seen_by_b] == ["a0", "a1", "a2"]
    assert [e["request_id"] for e in seen_by_a] == ["b0"]
    assert seen_by_other == []  # another gateway's workers on the same Redis


async def test_a_redis_outage_drops_events_and_sharing_resumes(
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(fanout_module, "RETRY_S", 0.1)
    (a, _), (b, seen_by_b) = worker(redis_server), worker(redis_server)
    caplog.set_level(logging.INFO, "modelgate.fanout")
    async with running(a), running(b):
        await asyncio.sleep(0.3)
        redis_server.stop()
        a.send({"request_id": "lost"})  # never raises: the request path is not involved
        await eventually(lambda: a.dropped == 1)
        redis_server.start()
        await eventually(lambda: "works again" in caplog.text)
        await asyncio.sleep(0.5)  # b's subscription is back too

        async def delivered() -> bool:
            a.send({"request_id": "after"})
            await asyncio.sleep(0.2)
            return any(e["request_id"] == "after" for e in seen_by_b)

        for _ in range(25):
            if await delivered():
                break
        assert any(e["request_id"] == "after" for e in seen_by_b)
    assert all(e["request_id"] != "lost" for e in seen_by_b)
    assert caplog.text.count("sharing events with the other workers failed") == 2  # a and b
    assert redis_server.url not in caplog.text


async def test_a_malformed_batch_is_skipped(redis_server: RedisServer) -> None:
    a, seen = worker(redis_server)
    async with running(a):
        a._received(b"not json")  # e.g. something else publishing on the channel
        a._received(b'{"origin": "elsewhere", "events": [{"request_id": "ok"}]}')
    assert seen == [{"request_id": "ok"}]


async def test_cooldowns_reach_the_other_workers(redis_server: RedisServer) -> None:
    cooled: list[dict[str, Any]] = []
    a, _ = worker(redis_server)
    b = EventFanout(redis_server.url, lambda events: None, "test", apply_cooldowns=cooled.extend)
    async with running(a), running(b):
        await asyncio.sleep(0.3)
        before = time.time()
        a.send_cooldown("openai", "env:OPENAI_API_KEY", 30, "rate limited by the upstream (429)")
        await eventually(lambda: len(cooled) == 1)
    (item,) = cooled
    assert (item["provider"], item["ref"], item["reason"]) == (
        "openai",
        "env:OPENAI_API_KEY",
        "rate limited by the upstream (429)",
    )
    assert before + 29 < item["until"] < time.time() + 31
