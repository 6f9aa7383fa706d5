"""The event bus: replay ring, viewer backlogs, dropping, without a server."""

from __future__ import annotations

import time

import pytest

from gateway.usage.events import FELL_BEHIND, SHUTTING_DOWN, EventBus


def publish(bus: EventBus, count: int) -> None:
    for n in range(count):
        bus.publish({"n": n})


def test_ids_are_consecutive_and_the_ring_keeps_the_last_events() -> None:
    bus = EventBus(capacity=5)
    publish(bus, 8)
    everything = bus.since(0)
    assert everything.missed  # 0 is older than anything kept
    assert [item.event["n"] for item in everything.items] == [3, 4, 5, 6, 7]
    ids = [item.id for item in everything.items]
    assert ids == list(range(ids[0], ids[0] + 5))
    assert bus.last_id == ids[-1]


def test_since_returns_what_came_after_an_id() -> None:
    bus = EventBus(capacity=5)
    publish(bus, 8)
    last = bus.last_id
    after = bus.since(last - 2)
    assert not after.missed and [i.event["n"] for i in after.items] == [6, 7]
    assert bus.since(last).items == [] and not bus.since(last).missed
    oldest_kept = bus.since(last - 5)  # the one just before the ring: nothing lost
    assert not oldest_kept.missed and len(oldest_kept.items) == 5
    lost = bus.since(last - 6)
    assert lost.missed and len(lost.items) == 5
    future = bus.since(last + 10)  # not an id of this run
    assert future.missed and len(future.items) == 5


def test_ids_of_a_later_run_are_larger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.5)
    earlier = EventBus()
    publish(earlier, 5000)
    monkeypatch.setattr(time, "time", lambda: 1_800_000_001.0)  # restarted a second later
    later = EventBus()
    later.publish({"n": 0})
    assert later.last_id > earlier.last_id
    replay = later.since(earlier.last_id)  # a viewer of the earlier run reconnects
    assert replay.missed and len(replay.items) == 1


def test_a_viewer_that_falls_behind_is_dropped_and_others_keep_going() -> None:
    bus = EventBus(capacity=100, viewer_backlog=3)
    slow, fast = bus.subscribe(), bus.subscribe()
    publish(bus, 2)
    assert len(fast.take()) == 2
    publish(bus, 2)  # slow now has 4 waiting: one more than its backlog allows
    assert slow.dropped == FELL_BEHIND and not slow.backlog and slow.ready.is_set()
    assert bus.subscriber_count == 1 and bus.dropped_viewers == 1
    assert [i.event["n"] for i in fast.take()] == [0, 1]
    publish(bus, 1)
    assert len(fast.take()) == 1 and fast.dropped is None


def test_close_all_ends_every_viewer() -> None:
    bus = EventBus()
    subs = [bus.subscribe() for _ in range(3)]
    bus.close_all()
    assert all(s.dropped == SHUTTING_DOWN and s.ready.is_set() for s in subs)
    assert bus.subscriber_count == 0
    assert bus.dropped_viewers == 0  # shutting down is not falling behind


def test_an_event_is_encoded_once_for_every_viewer() -> None:
    bus = EventBus()
    bus.publish({"status": 200, "model": "m"})
    (item,) = bus.since(bus.last_id - 1).items
    frame = item.wire()
    assert frame is item.wire()
    assert frame == b'id: %d\nevent: request\ndata: {"status":200,"model":"m"}\n\n' % item.id
