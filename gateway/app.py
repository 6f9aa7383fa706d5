"""The Sanic application factory and its worker lifecycle."""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
from collections.abc import Callable
from functools import partial

import httpx
from sanic import HTTPResponse, Request, Sanic
from sanic.config import Config
from sanic.exceptions import MethodNotAllowed, PayloadTooLarge, SanicException
from sanic.exceptions import NotFound as RouteNotFound

from credentials.pool import CredentialPools, CredentialResolver
from credentials.refs import AllowedRefs
from gateway.admin import routes as admin_routes
from gateway.admin import sync as admin_sync
from gateway.alerts import BudgetAlerts
from gateway.api import anthropic as anthropic_api
from gateway.api import gemini as gemini_api
from gateway.api import openai as openai_api
from gateway.api import openai_files as openai_files_api
from gateway.api import openai_media as openai_media_api
from gateway.drain import SHUTDOWN_MARGIN_S, Drain
from gateway.errors import BadRequest, GatewayError, NotFound
from gateway.limits.factory import create_limiter
from gateway.logs import configure_logging
from gateway.metrics import GatewayMetrics, LiveSources
from gateway.payloads import Cooldown
from gateway.protocols import caller_protocol
from gateway.request.body import RequestBodies, body_too_large
from gateway.request.translation import SWITCH_INTERVAL_S
from gateway.responses import error_response, request_id_of
from gateway.settings import Settings
from gateway.state import AppContext, AppState
from gateway.tracing.setup import start_tracing, stop_tracing
from gateway.upstream.dispatch import Dispatcher
from gateway.upstream.proxy import UpstreamProxy
from gateway.upstream.strategy import RouteCursors
from gateway.upstream.transport import (
    create_http_client,
    open_files_limit,
    upstream_connection_cap,
)
from gateway.usage.events import EventBus
from gateway.usage.recorder import Recorder
from gateway.usage.request_log import DEFAULT_FILE as REQUEST_LOG_FILE
from gateway.usage.request_log import RequestLog
from gateway.usage.traffic import Traffic
from policies.reload import PolicyHolder, PolicyWatcher
from policies.remote import RemoteSync, fetch_hook

log = logging.getLogger("modelgate")

STREAM_RESPONSE_TIMEOUT_S = 3600  # a long generation must not be cut by the server itself


AppType = Sanic[Config, AppContext]


def create_app(
    settings: Settings,
    name: str = "modelgate",
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] | None = None,
) -> AppType:
    """The gateway as a Sanic app; its state is built when its server starts.

    Tests run it in process (tests/inprocess) with `transport` as the upstream engine (None:
    the gateway's own HTTP/1.1 engine) and `clock`, epoch seconds for limits, credential
    cooldowns and token lifetimes (None: the real clocks).
    """
    app: AppType = Sanic(name, ctx=AppContext(), configure_logging=False)
    app.config.REQUEST_MAX_SIZE = settings.max_body_bytes
    app.config.RESPONSE_TIMEOUT = STREAM_RESPONSE_TIMEOUT_S
    # A head's time; a connection's first head is due that long after the accept (front_door).
    app.config.REQUEST_TIMEOUT = math.ceil(settings.body_timeout_s)
    # Above the 60 s idle timeout of common proxies and load balancers (nginx, AWS ALB), so
    # they never send on a connection the gateway is closing. Lower would not bound idle
    # connections better: a client keeps one open with a cheap request per timeout.
    app.config.KEEP_ALIVE_TIMEOUT = 75
    app.config.NOISY_EXCEPTIONS = False
    app.config.ACCESS_LOG = False
    app.config.MOTD = False
    # Streams still running at the drain deadline are cut then; the margin lets them end.
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = settings.drain_timeout_s + SHUTDOWN_MARGIN_S
    app.ctx.drain = Drain(settings.drain_grace_s, settings.drain_timeout_s)
    app.blueprint(openai_api.bp)
    app.blueprint(openai_media_api.bp)
    app.blueprint(openai_files_api.bp)
    app.blueprint(anthropic_api.bp)
    app.blueprint(gemini_api.bp)
    app.blueprint(admin_routes.bp)
    app.blueprint(admin_sync.bp)
    app.error_handler.add(Exception, _render_error)

    @app.before_server_start
    async def start(app: AppType) -> None:
        sys.setswitchinterval(SWITCH_INTERVAL_S)  # large translations run on a thread
        if settings.workers > 1:  # each serving process needs its own log writer thread
            configure_logging(settings.log_level, settings.log_format)
        app.ctx.state = await _build_state(settings, transport, clock)
        start_tracing(settings.otlp_endpoint, settings.otel_sample_ratio, settings.instance)
        app.ctx.alerts = start_alerts(app.ctx.state, clock or time.time)
        app.add_task(app.ctx.state.watcher.run(), name="policy-watcher")
        app.add_task(app.ctx.state.recorder.request_log.run(), name="request-log")
        app.add_task(app.ctx.state.recorder.run_access_log(), name="access-log")
        if settings.workers > 1 and settings.redis_url:
            from gateway.usage.fanout import CHANNEL as FANOUT_CHANNEL  # loads redis: only here
            from gateway.usage.fanout import EventFanout

            state = app.ctx.state
            fanout = EventFanout(
                settings.redis_url,
                state.recorder.record_remote,
                channel=f"{FANOUT_CHANNEL}:{settings.instance}",
                apply_cooldowns=partial(_cool_down_announced, state.pools),
                apply_alerts=app.ctx.alerts.record_remote,
            )
            await fanout.subscribe()  # before serving: Redis keeps no events for latecomers
            state.recorder.share = fanout.send
            state.pools.on_cool_down = fanout.send_cooldown
            app.ctx.alerts.share = fanout.send_alert
            app.add_task(fanout.run(), name="event-fanout")

    @app.before_server_stop
    async def closing(app: AppType) -> None:
        app.ctx.state.events.close_all()  # live viewers end, so shutdown need not wait
        # A task blocked on a Redis read would hold shutdown up to its graceful timeout.
        await app.cancel_task("event-fanout", raise_exception=False)

    @app.after_server_stop
    async def stop(app: AppType) -> None:
        state: AppState = app.ctx.state
        await app.ctx.alerts.close()
        await state.limiter.close()
        state.recorder.flush_access_log()
        await state.recorder.request_log.close()
        await state.http.aclose()
        await asyncio.to_thread(stop_tracing)  # the batched spans, exported

    return app


async def _build_state(
    settings: Settings,
    transport: httpx.AsyncBaseTransport | None,
    clock: Callable[[], float] | None,
) -> AppState:
    holder = PolicyHolder()
    if settings.remote:  # fetched every sync_interval (and on POST /admin/api/sync)
        holder.remote = RemoteSync(settings.policy_repo, settings.remote, settings.ref)
    traffic = Traffic()
    metrics = GatewayMetrics(traffic)
    watcher = PolicyWatcher(
        holder,
        settings.policy_repo,
        settings.ref,
        settings.poll_interval,
        on_attempt=metrics.policy_attempt,
        fetch=fetch_hook(holder.remote) if holder.remote else None,
        fetch_interval=settings.sync_interval,
        allowed=AllowedRefs.parse(settings.credential_env_prefix),
    )
    await asyncio.to_thread(watcher.load_initial)
    proxy = (
        UpstreamProxy.parse(settings.upstream_proxy, settings.no_proxy)
        if settings.upstream_proxy
        else None
    )
    open_files = open_files_limit()
    cap = upstream_connection_cap(
        settings.max_connections, settings.upstream_max_connections, open_files
    )
    if cap < settings.max_connections and not settings.upstream_max_connections:
        log.warning(
            "upstream connections capped by the open-files limit: raise ulimit -n",
            extra={"upstream_max_connections": cap, "open_files": open_files},
        )
    http = create_http_client(
        max_connections=cap,
        pool_timeout=settings.upstream_pool_timeout_s,
        proxy=proxy,
        transport=transport,
    )
    pools = CredentialPools(CredentialResolver(settings.credentials_dir), clock or time.monotonic)
    limiter = create_limiter(
        settings.redis_url, settings.state_dir, settings.limits_fail_mode, clock or time.time
    )
    await limiter.start()
    events = EventBus(settings.events_buffer, settings.events_viewer_backlog)
    request_log = RequestLog(
        settings.state_dir / REQUEST_LOG_FILE, settings.request_log_retention_days
    )
    await asyncio.to_thread(request_log.open)
    metrics.watch(
        LiveSources(
            policy=holder,
            pools=pools,
            limiter_status=limiter.status,
            viewers=lambda: (events.subscriber_count, events.dropped_viewers, events.published),
            request_log=lambda: (request_log.pending, request_log.dropped),
        )
    )
    return AppState(
        settings=settings,
        policy=holder,
        watcher=watcher,
        http=http,
        pools=pools,
        dispatcher=Dispatcher(http, pools, RouteCursors()),
        limiter=limiter,
        events=events,
        recorder=Recorder(holder, events, traffic, metrics, request_log),
        bodies=RequestBodies(
            settings.max_body_bytes,
            settings.max_inflight_body_mb * 1024 * 1024,
            settings.body_timeout_s,
        ),
    )


def start_alerts(state: AppState, clock: Callable[[], float]) -> BudgetAlerts:
    """Budget alerts (alerts.yaml), told of every request this worker settles."""
    settings = state.settings
    alerts = BudgetAlerts.create(
        state.policy,
        state.limiter,
        state.events,
        state.recorder.metrics.registry,
        redis_url=settings.redis_url,
        state_dir=settings.state_dir,
        credentials_dir=settings.credentials_dir,
        clock=clock,
    )
    state.recorder.on_finished = alerts.on_finished
    return alerts


def _cool_down_announced(pools: CredentialPools, cooldowns: list[Cooldown]) -> None:
    """Cooldowns another worker started: the same credentials sit out here too."""
    now = time.time()
    for item in cooldowns:
        seconds = float(item["until"]) - now
        if seconds > 0:
            pools.cool_down(item["provider"], item["ref"], seconds, item["reason"], announce=False)


def _as_gateway_error(exc: Exception, request: Request) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, PayloadTooLarge):
        return body_too_large(request.app.config.REQUEST_MAX_SIZE)
    if isinstance(exc, RouteNotFound):
        return NotFound(f"There is no endpoint {request.method} {request.path} on this gateway.")
    if isinstance(exc, MethodNotAllowed):
        return BadRequest(f"{request.method} is not allowed on {request.path}.", status=405)
    if isinstance(exc, SanicException) and 400 <= exc.status_code < 500:
        return BadRequest(str(exc), status=exc.status_code)
    log.exception("unexpected error", extra={"request_id": request_id_of(request)})
    return GatewayError(
        "The gateway failed unexpectedly. Retry; if it persists, tell its operators."
    )


def _render_error(request: Request, exc: Exception) -> HTTPResponse:
    err = _as_gateway_error(exc, request)
    protocol = caller_protocol(request.path, request.headers, request.args)
    state: AppState | None = getattr(request.app.ctx, "state", None)
    snapshot = state.policy.snapshot if state else None
    return error_response(
        err, protocol, request_id_of(request), snapshot.commit if snapshot else None
    )
