"""Stage ①: turn the presented key into a Principal.

Keys are looked up by the SHA-256 of the presented secret, so the lookup costs the same for
any number of keys and the comparison never touches the secret itself (a dict hit on a
256-bit digest leaks nothing useful about the secret).
"""

from __future__ import annotations

import datetime as dt

from credentials.keys import sha256_hex
from gateway.errors import Forbidden, Unauthenticated
from policies.snapshot import AdminPrincipal, Principal, Snapshot


def presented_key(headers: object, query_key: str | None) -> str | None:
    """The key in whichever form the client's SDK sends it."""
    get = headers.get  # type: ignore[attr-defined]
    auth: str | None = get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return str(token.strip())
    for name in ("x-api-key", "x-goog-api-key"):
        value: str | None = get(name)
        if value:
            return value.strip()
    return query_key or None


def authenticate(snapshot: Snapshot, secret: str | None, today: dt.date | None = None) -> Principal:
    if not secret:
        raise Unauthenticated(
            "No API key was sent. Send your ModelGate key as 'Authorization: Bearer mg-...'."
        )
    principal = snapshot.principal(sha256_hex(secret))
    if principal is None:
        raise Unauthenticated("The API key is not valid. Check the key, or ask for a new one.")
    if principal.disabled:
        raise Unauthenticated(
            f"The key '{principal.key_id}' is disabled. Ask its owner to enable it."
        )
    if principal.is_expired(today or dt.datetime.now(dt.UTC).date()):
        raise Unauthenticated(f"The key '{principal.key_id}' has expired. Ask for a new key.")
    return principal


def authenticate_admin(snapshot: Snapshot | None, secret: str | None) -> AdminPrincipal:
    """An admin token: 401 when absent or unknown, 403 when it is a client key."""
    if not secret:
        raise Unauthenticated("This endpoint needs an admin token: 'Authorization: Bearer mg-...'.")
    if snapshot is None:
        raise Unauthenticated("No policy is applied yet, so no admin token is known.")
    digest = sha256_hex(secret)
    admin = snapshot.admin(digest)
    if admin is not None and not admin.disabled:
        return admin
    if snapshot.principal(digest) is not None:
        raise Forbidden("A client key cannot use the admin API; use an admin token.")
    raise Unauthenticated("The admin token is not valid.")
