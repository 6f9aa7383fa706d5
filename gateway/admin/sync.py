"""`POST /admin/api/sync`: fetch the remote and apply now (admin token, or a signed push webhook).

A Git host's push webhook carries no admin token; it proves itself with
`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` (GitHub, Gitea, Forgejo),
keyed with the secret behind `--webhook-secret`; GitLab sends the secret itself as
`X-Gitlab-Token`. With either header present, a wrong one is refused (401) before anything
is fetched.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from sanic import Blueprint, HTTPResponse, Request

from credentials.refs import CredentialUnavailable, resolve_ref
from gateway.admin.common import commit_of, refused, state_of
from gateway.errors import GatewayError, Protocol, Unauthenticated
from gateway.responses import error_response, json_response, request_id_of
from gateway.settings import Settings

bp = Blueprint("admin_sync")

SIGNATURE_HEADER = "x-hub-signature-256"
SIGNATURE_PREFIX = "sha256="
GITLAB_TOKEN_HEADER = "x-gitlab-token"


def signature_of(secret: bytes, body: bytes) -> str:
    """The header value a Git host sends for `body` (`sha256=<hex>`)."""
    return SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_matches(secret: bytes, body: bytes, header: str) -> bool:
    """Whether `header` is the HMAC-SHA256 of `body` under `secret` (constant-time)."""
    expected = signature_of(secret, body).encode("ascii")
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


@bp.post("/admin/api/sync")
async def sync(request: Request) -> HTTPResponse:
    state = state_of(request)
    rid = request_id_of(request)
    signature = request.headers.get(SIGNATURE_HEADER)
    gitlab_token = request.headers.get(GITLAB_TOKEN_HEADER)
    if signature is not None or gitlab_token is not None:
        try:
            secret = _webhook_secret(state.settings)
            if signature is not None:
                proven = signature_matches(secret, request.body or b"", signature)
            else:
                proven = hmac.compare_digest(secret, str(gitlab_token).encode("utf-8", "replace"))
            if not proven:
                what = "signature" if signature is not None else "token (X-Gitlab-Token)"
                raise Unauthenticated(
                    f"The webhook {what} does not match: give the Git host the same secret "
                    "as --webhook-secret."
                )
        except GatewayError as err:
            return error_response(err, Protocol.OPENAI, rid, commit_of(state))
    else:
        denied = refused(request)
        if denied is not None:
            return denied
    changed = await state.watcher.check_now(fetch=True)
    remote = state.policy.remote
    fetch_failed = remote is not None and remote.last is not None and remote.last.error is not None
    body = {"changed": changed, "policy": state.policy.status_dict()}
    return json_response(body, rid, commit_of(state), 502 if fetch_failed else 200)
