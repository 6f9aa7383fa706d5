"""`POST /admin/api/sync`: fetch the remote and apply now (admin token, or a signed push webhook).

A Git host's push webhook carries no admin token; it proves itself with
`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` (GitHub, Gitea, Forgejo),
keyed with the secret behind `--webhook-secret`; GitLab sends the secret itself as
`X-Gitlab-Token`. With either header present, a wrong one is refused (401) before anything
is fetched.

Replays are refused (409): a worker remembers the deliveries it accepted, by their proof and
by the delivery ids hosts send (sync_guard.py). No Git host signs the time it sent a
delivery; a sender that can (a CI job, a script) adds `X-Modelgate-Timestamp: <Unix time>`
and signs `<timestamp>.<body>` instead, and a timestamp more than 5 minutes away from the
gateway's clock is refused (400). Syncs are rate-limited per worker (429 with Retry-After).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time

from sanic import Blueprint, HTTPResponse, Request, Sanic
from sanic.config import Config

from credentials.refs import CredentialUnavailable, resolve_ref
from gateway.admin.common import commit_of, refused, state_of
from gateway.admin.sync_guard import SyncGuard
from gateway.errors import BadRequest, GatewayError, Protocol, RateLimited, Unauthenticated
from gateway.front_door import close_after_answer
from gateway.responses import error_response, json_response, request_id_of
from gateway.settings import Settings
from gateway.state import AppContext

bp = Blueprint("admin_sync")

SIGNATURE_HEADER = "x-hub-signature-256"
SIGNATURE_PREFIX = "sha256="
GITLAB_TOKEN_HEADER = "x-gitlab-token"
TIMESTAMP_HEADER = "x-modelgate-timestamp"
MAX_TIMESTAMP_SKEW_S = 300
DELIVERY_HEADERS = (
    "x-github-delivery",
    "x-gitea-delivery",
    "x-forgejo-delivery",
    "x-gitlab-event-uuid",
    "idempotency-key",  # GitLab, the same across its retries of one event
    "x-request-uuid",  # Bitbucket Cloud
    "x-modelgate-delivery",
)
_MAX_DELIVERY_ID = 200


@bp.before_server_start
async def _guard(app: Sanic[Config, AppContext]) -> None:
    app.ctx.sync_guard = SyncGuard()


def signature_of(secret: bytes, body: bytes, timestamp: str | None = None) -> str:
    """The header value a Git host sends for `body` (`sha256=<hex>`); with a timestamp, the
    signature over `<timestamp>.<body>`."""
    message = body if timestamp is None else timestamp.encode("ascii") + b"." + body
    return SIGNATURE_PREFIX + hmac.new(secret, message, hashlib.sha256).hexdigest()


def signature_matches(
    secret: bytes, body: bytes, header: str, timestamp: str | None = None
) -> bool:
    """Whether `header` is the HMAC-SHA256 of `body` under `secret` (constant-time)."""
    expected = signature_of(secret, body, timestamp).encode("ascii")
    return hmac.compare_digest(expected, header.strip().lower().encode("utf-8", "replace"))


def _webhook_secret(settings: Settings) -> bytes:
    if not settings.webhook_secret:
        raise GatewayError(
            "This gateway has no webhook secret: start it with --webhook-secret env:NAME or "
            "file:NAME, and give the Git host the same secret.",
            status=503,
        )
    try:
        value = resolve_ref(settings.webhook_secret, settings.credentials_dir, os.environ)
    except CredentialUnavailable as exc:
        raise GatewayError(f"The webhook secret is not available: {exc}.", status=503) from None
    return value.encode("utf-8")


def _fresh_timestamp(value: str) -> str:
    """The timestamp as signed, when it is a Unix time close to now; else 400."""
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 12):
        raise BadRequest(f"{TIMESTAMP_HEADER} must be the Unix time in whole seconds.")
    age = time.time() - int(text)
    if abs(age) > MAX_TIMESTAMP_SKEW_S:
        when = f"{age:.0f} s old" if age > 0 else f"{-age:.0f} s in the future"
        raise BadRequest(
            f"The webhook's {TIMESTAMP_HEADER} is {when}; a delivery more than "
            f"{MAX_TIMESTAMP_SKEW_S} s from the gateway's clock is refused as a replay. Send "
            "the current time (and check the sender's clock)."
        )
    return text


def _proven_delivery(request: Request, settings: Settings) -> list[str]:
    """The keys a proven webhook delivery is remembered by; 400/401/503 when not proven."""
    body = request.body or b""
    signature = request.headers.get(SIGNATURE_HEADER)
    stamp = request.headers.get(TIMESTAMP_HEADER)
    timestamp = None if stamp is None else _fresh_timestamp(stamp)
    secret = _webhook_secret(settings)
    if signature is not None:
        if not signature_matches(secret, body, signature, timestamp):
            signed = "the body" if timestamp is None else f"'<{TIMESTAMP_HEADER}>.<body>'"
            raise Unauthenticated(
                f"The webhook signature does not match: sign {signed} with the same secret "
                "as --webhook-secret."
            )
        keys = ["hmac:" + signature.strip().lower()]
    else:
        token = str(request.headers.get(GITLAB_TOKEN_HEADER))
        if not hmac.compare_digest(secret, token.encode("utf-8", "replace")):
            raise Unauthenticated(
                "The webhook token (X-Gitlab-Token) does not match: give the Git host the "
                "same secret as --webhook-secret."
            )
        keys = ["gitlab:" + hashlib.sha256(body).hexdigest()]
    for name in DELIVERY_HEADERS:
        delivery = request.headers.get(name)
        if delivery:
            keys.append("id:" + delivery.strip()[:_MAX_DELIVERY_ID])
    return keys


# A streaming route, so that Sanic leaves the body alone: it is read only for a webhook,
# whose proof covers it, within the bounds every request body has (request_body.py).
@bp.post("/admin/api/sync", stream=True)
async def sync(request: Request) -> HTTPResponse:
    state = state_of(request)
    rid = request_id_of(request)
    guard: SyncGuard = request.app.ctx.sync_guard
    webhook = SIGNATURE_HEADER in request.headers or GITLAB_TOKEN_HEADER in request.headers
    delivery: list[str] = []
    try:
        if webhook:
            held = await state.bodies.read(request)
            try:
                delivery = _proven_delivery(request, state.settings)
            finally:
                state.bodies.release(held)  # proving it was the body's only use
            if guard.deliveries.seen(delivery):
                raise GatewayError(
                    "This webhook delivery was already received: a replayed delivery is "
                    "refused. Push again, or sync with an admin token; the gateway also "
                    "fetches the remote every --sync-interval seconds.",
                    status=409,
                )
        else:
            denied = refused(request)
            if denied is not None:
                close_after_answer(request)
                return denied
        wait = guard.bucket.take()
        if wait:
            raise RateLimited(
                f"Too many sync requests: retry in {wait} s. The gateway also fetches the "
                "remote every --sync-interval seconds.",
                headers={"retry-after": str(wait)},
            )
    except GatewayError as err:
        close_after_answer(request)
        return error_response(err, Protocol.OPENAI, rid, commit_of(state))
    guard.deliveries.remember(delivery)
    fetch_failed = True
    try:
        changed = await state.watcher.check_now(fetch=True)
        remote = state.policy.remote
        fetch_failed = (
            remote is not None and remote.last is not None and remote.last.error is not None
        )
    finally:
        if fetch_failed:  # the host's redelivery of a failed sync is no replay
            guard.deliveries.forget(delivery)
    body = {"changed": changed, "policy": state.policy.status_dict()}
    return json_response(body, rid, commit_of(state), 502 if fetch_failed else 200)
