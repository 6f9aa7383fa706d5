"""Budget alerts (alerts.yaml): each threshold fires once per scope and period, as an event,
a metric and a webhook POST that reaches a loopback receiver (retried while it answers 500);
two limiters on one Redis fire each threshold once between them."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from credentials.pool import CredentialResolver
from gateway.alerts import BudgetAlerts
from gateway.alerts.fired import FiredLedger, RedisLedger, SqliteLedger
from gateway.alerts.webhook import WebhookSender
from gateway.errors import Protocol
from gateway.limits import Limiter
from gateway.limits.memory import MemoryLimiter
from gateway.limits.redis import RedisLimiter
from gateway.request.exchange import Exchange
from gateway.usage.events import EventBus
from policies.loader import PolicyInvalid, load_policy
from policies.reload import PolicyHolder
from policies.snapshot import Snapshot
from tests.support.fake_clock import FakeClock
from tests.support.policy_repo import hash_of, new_secret

PROVIDERS = "providers:\n  local: {type: openai-compatible, base_url: http://127.0.0.1:9/v1}\n"
ROUTES = "routes:\n  m: {targets: [local/m]}\n"
TEAMS = "teams:\n  search:\n    limits: {usd_per_day: 10, tokens_per_month: 1000}\n"
KEYS = f"keys:\n  - {{id: k1, hash: {hash_of(new_secret())}, team: search}}\n"
ALERTS = """
alerts:
  - scopes: teams
    limits: [usd_per_day]
    webhook: env:ALERT_HOOK
"""


def snapshot(alerts: str = ALERTS) -> Snapshot:
    files = {
        "providers.yaml": PROVIDERS,
        "routes.yaml": ROUTES,
        "teams.yaml": TEAMS,
        "keys.yaml": KEYS,
        "alerts.yaml": alerts,
    }
    return Snapshot.compile(load_policy({n: t.encode() for n, t in files.items()}), "c1")


@dataclass
class Receiver:
    """A webhook receiver on loopback that answers 500 to its first `failures` POSTs."""

    failures: int = 0
    posts: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append(await request.json())
        if len(self.posts) <= self.failures:
            return web.Response(status=500)
        return web.Response(text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()
    app = web.Application()
    app.router.add_post("/hook", got.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    got.url = f"http://127.0.0.1:{port}/hook"
    yield got
    await runner.cleanup()


@dataclass
class Gateway:
    """What one worker holds for alerts: its limiter, event bus, metrics and the watcher."""

    limiter: Limiter
    alerts: BudgetAlerts
    events: EventBus
    registry: CollectorRegistry
    principal_scopes: tuple  # type: ignore[type-arg]

    async def spend(self, dollars: float, tokens: int = 10) -> None:
        admission = await self.limiter.admit(self.principal_scopes, tokens)
        await self.limiter.settle(admission, tokens, round(dollars * 1_000_000))
        exchange = Exchange("r", Protocol.OPENAI, 0.0, 0.0, key_id="k1")
        self.alerts.on_finished(exchange)
        await self.alerts.drain()

    def alerts_seen(self) -> list[tuple[str, str, int]]:
        items = self.events.since(0).items
        return [
            (i.event["scope"], i.event["limit"], i.event["threshold"])  # type: ignore[typeddict-item]
            for i in items
            if i.kind == b"budget_alert"
        ]

    def metric(self, threshold: int) -> float | None:
        labels = {"scope": "team:search", "limit": "usd_per_day", "threshold": str(threshold)}
        return self.registry.get_sample_value("modelgate_budget_alerts_total", labels)


def gateway(
    limiter: Limiter,
    ledger: FiredLedger,
    clock: FakeClock,
    hook_url: str = "http://127.0.0.1:9/none",
    policy: Snapshot | None = None,
) -> Gateway:
    holder = PolicyHolder()
    holder.apply(policy or snapshot())
    assert holder.snapshot is not None
    resolver = CredentialResolver(Path("/nonexistent"), environ={"ALERT_HOOK": hook_url})
    webhooks = WebhookSender(lambda ref: resolver.resolve(ref, 0.0), first_delay_s=0.01)
    events, registry = EventBus(), CollectorRegistry()
    alerts = BudgetAlerts(holder, limiter, events, registry, ledger, webhooks, clock)
    (principal,) = holder.snapshot.principals_by_hash.values()
    return Gateway(limiter, alerts, events, registry, principal.scopes)


async def test_each_threshold_fires_once_and_the_webhook_is_retried_until_delivered(
    tmp_path: Path, clock: FakeClock, receiver: Receiver
) -> None:
    receiver.failures = 2  # the first alert's first two POSTs get a 500
    gw = gateway(
        MemoryLimiter(None, clock=clock), SqliteLedger(tmp_path / "a.db"), clock, receiver.url
    )
    await gw.spend(4.99)
    assert gw.alerts_seen() == []
    await gw.spend(0.01)  # $5 of $10: 50%
    assert gw.alerts_seen() == [("team:search", "usd_per_day", 50)]
    assert len(receiver.posts) == 3  # 500, 500, then delivered
    assert receiver.posts[-1]["text"] == (
        "ModelGate: team 'search' reached 50% of its daily budget ($5 of $10 in 2025-03-14; "
        "resets 2025-03-15T00:00:00Z)"
    )
    await gw.spend(1)  # 60%: nothing new
    await gw.spend(0)
    assert len(gw.alerts_seen()) == 1
    await gw.spend(2.5)  # 85%
    await gw.spend(5)  # 135%: 100% fires once, however far past it
    assert [t for _, _, t in gw.alerts_seen()] == [50, 80, 100]
    assert [gw.metric(t) for t in (50, 80, 100)] == [1.0, 1.0, 1.0]
    assert [p["text"].split(" reached ")[1][:4] for p in receiver.posts[2:]] == [
        "50% ",
        "80% ",
        "100%",
    ]
    await gw.alerts.close()


async def test_a_new_day_fires_again_and_a_restart_does_not(
    tmp_path: Path, clock: FakeClock
) -> None:
    ledger = tmp_path / "alerts.sqlite3"
    limiter = MemoryLimiter(None, clock=clock)
    first = gateway(limiter, SqliteLedger(ledger), clock)
    await first.spend(6)
    assert [t for _, _, t in first.alerts_seen()] == [50]
    restarted = gateway(limiter, SqliteLedger(ledger), clock)  # its memory is empty
    await restarted.spend(0)
    assert restarted.alerts_seen() == []
    clock.advance(86_400)
    await restarted.spend(8.5)
    assert [t for _, _, t in restarted.alerts_seen()] == [50, 80]


async def test_two_limiters_on_one_redis_fire_each_threshold_once(
    redis_url: str, clock: FakeClock, make_redis_limiter: Callable[..., RedisLimiter]
) -> None:
    workers = [
        gateway(make_redis_limiter(redis_url), RedisLedger(redis_url), clock) for _ in range(2)
    ]
    for limiter in (w.limiter for w in workers):
        await limiter.start()
    one, two = workers
    await one.spend(5)  # 50%, seen by the first
    await two.spend(0)  # the second sees the same 50% (the team's total in Redis)
    await two.spend(3)  # 80%
    await one.spend(0)  # and the first sees 80% too
    await two.spend(2)  # 100%
    assert one.alerts_seen() == [("team:search", "usd_per_day", 50)]
    assert [t for _, _, t in two.alerts_seen()] == [80, 100]
    for w in workers:
        await w.alerts.close()


async def test_token_quotas_alert_at_the_default_thresholds(
    tmp_path: Path, clock: FakeClock
) -> None:
    policy = snapshot("alerts:\n  - scopes: [team:search]\n    limits: [tokens_per_month]\n")
    gw = gateway(
        MemoryLimiter(None, clock=clock), SqliteLedger(tmp_path / "a.db"), clock, policy=policy
    )
    await gw.spend(0, tokens=799)
    assert [t for _, _, t in gw.alerts_seen()] == [50]
    await gw.spend(0, tokens=1)
    (*_, last) = gw.events.since(0).items
    assert last.event["text"].endswith(  # type: ignore[typeddict-item]
        "reached 80% of its monthly token quota (800 of 1,000 tokens in 2025-03; "
        "resets 2025-04-01T00:00:00Z)"
    )


def test_alerts_yaml_errors_are_located() -> None:
    bad = textwrap.dedent(
        """\
        alerts:
          - scopes: [team:nope, k1, ghost]
            thresholds: []
          - limits: [usd_per_week]
            webhook: https://hooks.example.com/secret
        """
    )
    with pytest.raises(PolicyInvalid) as caught:
        snapshot(bad)
    text = str(caught.value)
    assert "alerts.yaml:3:" in text and "at least one threshold" in text
    assert "alerts.yaml:4:" in text and "usd_per_week" not in text.split("alerts.yaml:4:")[0]
    assert "alerts.yaml:5:" in text
    assert "https://hooks.example.com/secret" not in text  # a webhook URL is a secret


def test_unknown_scopes_are_located() -> None:
    with pytest.raises(PolicyInvalid) as caught:
        snapshot("alerts:\n  - scopes: [team:nope, k1, ghost]\n")
    text = str(caught.value)
    assert "alerts.yaml:2:14: 'nope' is not a team in teams.yaml (known: search)" in text
    assert "alerts.yaml:2:29: 'ghost' is not a key id" in text
    assert "k1" not in text.replace("keys.yaml", "")
