"""AWS access keys named by a bedrock provider's `{aws: {...}}` entry, resolved to values.

The values sign requests (gateway/upstream/aws_signing.py) and are never logged: the
dataclass keeps the secret parts out of its repr.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from policies.models import AwsCredential


@dataclass(frozen=True, slots=True)
class AwsAccessKey:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def resolve_aws_key(spec: AwsCredential, resolve: Callable[[str], str]) -> AwsAccessKey:
    """The key behind `spec`, each reference through `resolve` (raises CredentialUnavailable
    naming the reference that failed)."""
    keys = spec.aws
    token = None if keys.session_token is None else resolve(keys.session_token)
    return AwsAccessKey(resolve(keys.access_key_id), resolve(keys.secret_access_key), token)
