"""Credential references the operator does not lend to policies (`serve --credential-env-prefix`).

Every `env:`/`file:` reference in providers.yaml is checked: pool entries, and the references
inside token credentials (OAuth2 client secret and refresh token, service-account key) and
AWS keys (bedrock).
"""

from __future__ import annotations

from collections.abc import Iterator

from credentials.refs import AllowedRefs
from policies.crosscheck import Issue, Loc
from policies.models import AwsCredential, Provider, ProvidersFile, TokenCredential


def refused_refs(file: str, providers: ProvidersFile, allowed: AllowedRefs) -> list[Issue]:
    """One issue per reference in `providers` that `allowed` refuses."""
    issues = []
    for name, provider in providers.providers.items():
        for loc, ref in _references(provider):
            reason = allowed.refusal(ref)
            if reason is not None:
                issues.append(Issue(file, ("providers", name, "credentials", *loc), reason))
    return issues


def _references(provider: Provider) -> Iterator[tuple[Loc, str]]:
    for index, entry in enumerate(provider.credentials):
        if isinstance(entry, AwsCredential):
            keys = entry.aws
            for part in ("access_key_id", "secret_access_key", "session_token"):
                ref = getattr(keys, part)
                if ref is not None:
                    yield (index, "aws", part), ref
            continue
        if not isinstance(entry, TokenCredential):
            yield (index,), entry
            continue
        if entry.google_service_account is not None:
            yield (index, "google_service_account"), entry.google_service_account
        if entry.oauth2 is not None:
            grant = entry.oauth2
            if grant.client_secret is not None:
                yield (index, "oauth2", "client_secret"), grant.client_secret
            yield (index, "oauth2", "refresh_token"), grant.refresh_token
