"""AWS Signature Version 4 for Bedrock, by botocore: which key signs, and the signed headers.

A bedrock provider's key comes from its `{aws: ...}` credential entry (resolved by the
credential pool, credentials/aws_keys.py) or, when it names none, from botocore's default
chain: AWS_* environment variables, a web identity (EKS IRSA), the container or instance
role. The chain may call the network (STS, the instance metadata service), so it runs off
the event loop, and its temporary keys are refreshed when botocore says they are due.

The signature covers the exact method, URL, headers and body sent, so it is made per attempt
(it is dated: AWS refuses one older than five minutes). No key part is ever logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.session import get_session

from credentials.aws_keys import AwsAccessKey
from credentials.refs import CredentialUnavailable

log = logging.getLogger("modelgate.upstream")
_T = TypeVar("_T")

SERVICE = "bedrock"
"""Bedrock runtime's signing name (its host says bedrock-runtime; its signatures do not)."""
DEFAULT_CHAIN = "aws default chain"
"""How errors and logs name the default chain's key."""
MISSING_RECHECK_S = 30.0
"""How long a default chain that found no key is believed: probing the instance metadata
service off AWS takes seconds, which every request would otherwise wait."""


def sign_headers(
    key: AwsAccessKey | ReadOnlyCredentials,
    region: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, str]:
    """`headers` with botocore's SigV4 headers added (Authorization, X-Amz-Date, and
    X-Amz-Security-Token for temporary keys), over exactly these method, URL, headers and
    body; Host is signed as the URL names it, which is what the engine sends."""
    if isinstance(key, AwsAccessKey):
        credentials = Credentials(key.access_key_id, key.secret_access_key, key.session_token)
    else:
        credentials = Credentials(key.access_key, key.secret_key, key.token)
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    return dict(request.headers.items())


class DefaultChain:
    """botocore's default credential chain, looked up once and refreshed when due."""

    def __init__(
        self,
        lookup: Callable[[], Credentials | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup or _botocore_chain
        self._clock = clock
        self._found: Credentials | None = None
        self._missing_until = 0.0

    async def key(self) -> ReadOnlyCredentials:
        """The chain's current key; raises CredentialUnavailable when it has none."""
        found = self._found
        if found is None:
            if self._clock() < self._missing_until:
                raise _missing()
            found = await asyncio.to_thread(self._guarded, self._lookup)
            if found is None:
                self._missing_until = self._clock() + MISSING_RECHECK_S
                raise _missing()
            self._found = found
        if isinstance(found, RefreshableCredentials) and found.refresh_needed():
            # botocore refreshes under its own lock; the refresh may call STS or IMDS.
            frozen = await asyncio.to_thread(self._guarded, found.get_frozen_credentials)
        else:
            frozen = found.get_frozen_credentials()
        if frozen is None or not frozen.access_key or not frozen.secret_key:
            raise _missing()
        return frozen

    def forget(self) -> None:
        """Look the chain up again on next use (a key the upstream refused)."""
        self._found = None
        self._missing_until = 0.0

    @staticmethod
    def _guarded(call: Callable[[], _T]) -> _T:
        try:
            return call()
        except Exception as exc:  # botocore's many errors; their messages may name ARNs
            log.warning("aws default credential chain failed", extra={"error": type(exc).__name__})
            raise CredentialUnavailable(
                DEFAULT_CHAIN, f"looking up AWS credentials failed ({type(exc).__name__})"
            ) from None


def _botocore_chain() -> Credentials | None:
    return get_session().get_credentials()


def _missing() -> CredentialUnavailable:
    return CredentialUnavailable(
        DEFAULT_CHAIN,
        "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a web "
        "identity (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) or an instance role, or name "
        "a key in the provider's credentials ({aws: {...}})",
    )


DEFAULT = DefaultChain()
"""The process's default chain, shared by every bedrock provider without credentials."""


async def signing_key(
    key: AwsAccessKey | None, chain: DefaultChain = DEFAULT
) -> AwsAccessKey | ReadOnlyCredentials:
    """The credential entry's own key, or the default chain's when the provider names none."""
    return key if key is not None else await chain.key()
