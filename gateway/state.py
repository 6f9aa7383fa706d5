"""Per-worker state hung on `app.ctx` (an AppContext), created in `before_server_start`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from credentials.pool import CredentialPools
from gateway.admin.sync_guard import SyncGuard
from gateway.alerts import BudgetAlerts
from gateway.drain import Drain
from gateway.limits import Limiter
from gateway.request.body import RequestBodies
from gateway.responses import RequestIds
from gateway.settings import Settings
from gateway.upstream.dispatch import Dispatcher
from gateway.usage.events import EventBus
from gateway.usage.recorder import Recorder
from policies.reload import PolicyHolder, PolicyWatcher


@dataclass(slots=True)
class AppState:
    settings: Settings
    policy: PolicyHolder
    watcher: PolicyWatcher
    http: httpx.AsyncClient
    pools: CredentialPools
    dispatcher: Dispatcher
    limiter: Limiter
    events: EventBus
    recorder: Recorder
    bodies: RequestBodies
    started_at: float = field(default_factory=time.time)
    request_ids: RequestIds = field(default_factory=RequestIds)


class AppContext:
    """What `app.ctx` holds: each attribute is set by a `before_server_start` listener
    (reading one before that raises AttributeError, as on any object)."""

    state: AppState
    sync_guard: SyncGuard
    """POST /admin/api/sync's replay and rate guard (gateway/admin/sync.py)."""
    alerts: BudgetAlerts
    """Budget and quota alerts (gateway/alerts), hooked on the recorder."""
    drain: Drain
    """The zero-downtime shutdown's state (gateway/drain.py), set by create_app."""
