"""Prometheus metrics of one gateway process, on its own CollectorRegistry (no globals).

Per-request work is two histogram observations on cached children; request, error and token
counters are read from `Traffic` at scrape time, and everything else (policy, credentials,
limits, viewers, request log) is read from the live objects when scraped, so it is never
stale and costs the request path nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from gateway.payloads import CredentialStatus, LimiterStatus, RequestEvent
from gateway.pricing import MICROS_PER_USD
from gateway.translate.policy import KNOWN_HINTS
from gateway.usage.traffic import Labels, Traffic
from policies.reload import Attempt, PolicyHolder

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFB_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
LIMITER_KINDS = {"rate_limited": "rate", "quota": "quota", "limiter_unavailable": "unavailable"}
"""Error kinds the limiter causes -> the `kind` label of limiter rejections."""


class _Observer(Protocol):
    def observe(self, amount: float) -> None: ...


class _HasPoolStatus(Protocol):
    def status(self) -> list[CredentialStatus]: ...


@dataclass(frozen=True, slots=True)
class LiveSources:
    """What the scrape-time collector reads (each a cheap, non-blocking call)."""

    policy: PolicyHolder
    pools: _HasPoolStatus
    limiter_status: Callable[[], LimiterStatus]
    viewers: Callable[[], tuple[int, int, int]]
    """(connected viewers, viewers dropped, events published)"""
    request_log: Callable[[], tuple[int, int]]
    """(rows waiting to be written, rows dropped)"""


class GatewayMetrics:
    def __init__(self, traffic: Traffic) -> None:
        self.registry = CollectorRegistry()
        self._latency = Histogram(
            "modelgate_request_duration_seconds",
            "Time from arrival to the end of the response, by route and provider.",
            ["model", "provider"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self._ttfb = Histogram(
            "modelgate_time_to_first_byte_seconds",
            "Time from arrival to the upstream's first response byte, by route and provider.",
            ["model", "provider"],
            buckets=TTFB_BUCKETS_S,
            registry=self.registry,
        )
        self._reloads = Counter(
            "modelgate_policy_reloads",
            "Attempts to apply a policy commit, by result (applied or rejected).",
            ["result"],
            registry=self.registry,
        )
        self._dropped = Counter(
            "modelgate_dropped_params",
            "Request hints (sampling knobs, client metadata, cache markers...) a translated "
            "request's provider could not carry, so the gateway dropped them; by name as the "
            "client spelled it.",
            ["param"],
            registry=self.registry,
        )
        self._shadow = Counter(
            "modelgate_shadow_refusals",
            "Requests served that a shadow limit (enforce: shadow) would have refused, by "
            "scope (a key id, or team:NAME) and limit (rpm, tpm, max_concurrency, "
            "tokens_per_day, tokens_per_month, usd_per_day, usd_per_month).",
            ["scope", "limit"],
            registry=self.registry,
        )
        self.refused_connections = Counter(
            "modelgate_refused_connections",
            "Client connections closed unanswered at accept: the worker already held "
            "--max-connections.",
            registry=self.registry,
        )
        self._children: dict[tuple[str, str], tuple[_Observer, _Observer]] = {}
        self.registry.register(_TrafficCollector(traffic))
        ProcessCollector(registry=self.registry)

    def observe(self, labels: Labels, latency_ms: float, ttfb_ms: float | None) -> None:
        """Per request: two observations on children looked up once per (model, provider)."""
        pair = (labels.model, labels.provider)
        children = self._children.get(pair)
        if children is None:
            children = self._children[pair] = (
                self._latency.labels(*pair),
                self._ttfb.labels(*pair),
            )
        children[0].observe(latency_ms / 1000)
        if ttfb_ms is not None:
            children[1].observe(ttfb_ms / 1000)

    def shadow_refusals(self, event: RequestEvent) -> None:
        """Count the event's would-be refusals (`rpm`: the key's; `team:NAME/rpm`: a team's);
        every worker counts every worker's events, like the other request metrics."""
        for name in event.get("shadow") or ():
            scope, _, limit = name.rpartition("/")
            self._shadow.labels(scope or event["key_id"] or "", limit).inc()

    def dropped_params(self, names: Iterable[str]) -> None:
        """One translated request's dropped hints; a name outside the policy's list (there
        should be none) counts as "other", so the label's values stay bounded."""
        for name in names:
            self._dropped.labels(name if name in KNOWN_HINTS else "other").inc()

    def policy_attempt(self, attempt: Attempt) -> None:
        """The PolicyWatcher's `on_attempt` hook (runs on a thread at start-up: thread-safe)."""
        self._reloads.labels("applied" if attempt.ok else "rejected").inc()

    def watch(self, sources: LiveSources) -> None:
        self.registry.register(_LiveCollector(sources))

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition in the format the scraper asked for, and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class _TrafficCollector(Collector):
    def __init__(self, traffic: Traffic) -> None:
        self._traffic = traffic

    def collect(self) -> Iterable[Metric]:
        traffic = self._traffic
        by_status = list(traffic.by_status.items())  # a snapshot: the loop keeps counting
        errors = list(traffic.errors.items())
        requests = CounterMetricFamily(
            "modelgate_requests",
            "Finished requests by key, route, provider and status class.",
            labels=["key", "model", "provider", "status_class"],
        )
        for labels, totals in by_status:
            requests.add_metric(list(labels), totals.requests)
        yield requests
        failures = CounterMetricFamily(
            "modelgate_request_errors",
            "Failed requests by key, route, provider and error kind.",
            labels=["key", "model", "provider", "error"],
        )
        rejections: dict[tuple[str, str], int] = {}
        for labels, count in errors:
            failures.add_metric(list(labels), count)
            kind = LIMITER_KINDS.get(labels[3])
            if kind is not None:
                slot = (labels[0], kind)
                rejections[slot] = rejections.get(slot, 0) + count
        yield failures
        limited = CounterMetricFamily(
            "modelgate_limiter_rejections",
            "Requests refused by rate limits (rate), token quotas (quota) or an unreachable "
            "limits store in fail-closed mode (unavailable).",
            labels=["key", "kind"],
        )
        for slot, count in rejections.items():
            limited.add_metric(list(slot), count)
        yield limited
        tokens = CounterMetricFamily(
            "modelgate_tokens",
            "Tokens the upstreams reported, by key, route, provider and kind (prompt or "
            "completion).",
            labels=["key", "model", "provider", "kind"],
        )
        for (key, model, provider), (prompt, completion) in traffic.tokens().items():
            tokens.add_metric([key, model, provider, "prompt"], prompt)
            tokens.add_metric([key, model, provider, "completion"], completion)
        yield tokens
        cost = CounterMetricFamily(
            "modelgate_cost_usd",
            "What the upstreams charge, in US dollars (summed in micro-dollars), by key, team, "
            "route and provider; requests with no known price are left out (see "
            "modelgate_unpriced_requests).",
            labels=["key", "team", "model", "provider"],
        )
        for labels, micros in list(traffic.costs.items()):
            cost.add_metric(list(labels), micros / MICROS_PER_USD)
        yield cost
        unpriced = CounterMetricFamily(
            "modelgate_unpriced_requests",
            "Requests that reached a target with no known price (their cost is unknown).",
            labels=["key", "model", "provider"],
        )
        unknown: dict[tuple[str, str, str], int] = {}
        for (key, model, provider, _), totals in by_status:
            if totals.unpriced:
                slot3 = (key, model, provider)
                unknown[slot3] = unknown.get(slot3, 0) + totals.unpriced
        for slot3, count in unknown.items():
            unpriced.add_metric(list(slot3), count)
        yield unpriced


class _LiveCollector(Collector):
    def __init__(self, sources: LiveSources) -> None:
        self._s = sources

    def collect(self) -> Iterable[Metric]:
        holder = self._s.policy
        info = InfoMetricFamily("modelgate_policy", "The policy commit being served.")
        info.add_metric([], {"commit": holder.applied_commit or "none"})
        yield info
        yield GaugeMetricFamily(
            "modelgate_policy_rejected",
            "1 while the watched ref points at a commit that was refused (the last good "
            "commit keeps serving).",
            value=1 if holder.state == "rejected" else 0,
        )
        yield GaugeMetricFamily(
            "modelgate_policy_applied_timestamp_seconds",
            "Unix time the served policy commit was applied.",
            value=holder.applied_at or 0,
        )
        cooling = GaugeMetricFamily(
            "modelgate_credential_cooldown_seconds",
            "Seconds until an upstream credential may be used again after a 429.",
            labels=["provider", "credential"],
        )
        removed = GaugeMetricFamily(
            "modelgate_credential_removed",
            "1 for an upstream credential taken out after the upstream refused it.",
            labels=["provider", "credential"],
        )
        for entry in self._s.pools.status():
            names = [entry["provider"], entry["credential"]]  # references, never values
            cooling.add_metric(names, entry["cooling_down_s"])
            if entry["removed"]:
                removed.add_metric(names, 1)
        yield cooling
        yield removed
        limits = self._s.limiter_status()
        yield GaugeMetricFamily(
            "modelgate_limits_degraded",
            "1 while the limits store (Redis or the usage database) is failing.",
            value=0 if limits["state"] == "ok" else 1,
        )
        viewers, dropped, published = self._s.viewers()
        yield GaugeMetricFamily(
            "modelgate_event_viewers", "Connected live-event viewers.", value=viewers
        )
        yield CounterMetricFamily(
            "modelgate_event_viewers_dropped",
            "Live-event viewers dropped because they fell behind or stopped reading.",
            value=dropped,
        )
        yield CounterMetricFamily(
            "modelgate_events_published", "Finished-request events published.", value=published
        )
        pending, lost = self._s.request_log()
        yield GaugeMetricFamily(
            "modelgate_request_log_pending", "Request-log rows not yet written.", value=pending
        )
        yield CounterMetricFamily(
            "modelgate_request_log_dropped",
            "Request-log rows dropped because writing fell behind.",
            value=lost,
        )
