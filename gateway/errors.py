"""Client-facing errors; each renders itself in the calling protocol's own shape.

    GatewayError (500)
    ├── BadRequest (400)
    │   ├── MalformedJSON
    │   └── UnsupportedFeature        the target protocol cannot express what was asked
    ├── Unauthenticated (401)
    ├── Forbidden (403)
    ├── NotFound (404)
    ├── BodyTooLarge (413)
    ├── RateLimited (429)             rpm, tpm or concurrency
    │   └── QuotaExhausted            tokens_per_day / tokens_per_month
    ├── UpstreamClientError (4xx)     the upstream refused the client's request: passed back
    ├── UpstreamFailed (502)          after retries and failover
    └── Unavailable (503)             every credential cooling down
        └── UpstreamConnectionsBusy   every upstream connection of the worker stayed busy

Each protocol's shape (and its error types per status) is in its adapter, gateway.protocols.
Messages are written for the caller: they say what to do next and never carry upstream
URLs, credentials or key hashes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gateway.vocabulary import Protocol as Protocol  # re-exported: the old import path


class GatewayError(Exception):
    """Base of every error the gateway answers with."""

    status: ClassVar[int] = 500
    code: ClassVar[str | None] = None
    kind: ClassVar[str] = "internal"
    """Short label for events and metrics."""

    def __init__(
        self,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        param: str | None = None,
        status: int | None = None,
        openai_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = headers or {}
        self.param = param
        self.status_code = status or self.status
        self.openai_type = openai_type
        """OpenAI's error type when the status alone does not tell it (insufficient_quota)."""

    def body(self, protocol: Protocol) -> dict[str, Any]:
        """This error in `protocol`'s shape (each adapter knows its own)."""
        from gateway.protocols import ADAPTERS  # the adapters import this module

        return ADAPTERS[protocol].error_body(self)


class BadRequest(GatewayError):
    status = 400
    code = "invalid_request"
    kind = "bad_request"


class MalformedJSON(BadRequest):
    code = "invalid_json"

    def __init__(self, detail: str) -> None:
        super().__init__(f"The request body is not valid JSON ({detail}). Send a JSON object.")


class UnsupportedFeature(BadRequest):
    code = "unsupported_feature"
    kind = "unsupported"


class Unauthenticated(GatewayError):
    status = 401
    code = "invalid_api_key"
    kind = "auth"


class Forbidden(GatewayError):
    status = 403
    code = "model_not_allowed"
    kind = "forbidden"


class NotFound(GatewayError):
    status = 404
    code = "model_not_found"
    kind = "not_found"


class BodyTooLarge(GatewayError):
    status = 413
    code = "request_too_large"
    kind = "too_large"


class RateLimited(GatewayError):
    status = 429
    code = "rate_limit_exceeded"
    kind = "rate_limited"


class QuotaExhausted(RateLimited):
    code = "insufficient_quota"
    kind = "quota"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, headers=headers, openai_type="insufficient_quota")


class UpstreamClientError(GatewayError):
    """The upstream answered 4xx because of the client's request; passed back as that status."""

    code = "upstream_rejected"
    kind = "upstream_client_error"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, status=status)


class UpstreamFailed(GatewayError):
    status = 502
    code = "upstream_failed"
    kind = "upstream"


class Unavailable(GatewayError):
    status = 503
    code = "upstream_unavailable"
    kind = "unavailable"


class UpstreamConnectionsBusy(Unavailable):
    """The worker's upstream connections (--upstream-max-connections) all stayed in use for
    --upstream-pool-timeout: the gateway's own capacity, not the upstream's failure."""

    code = "server_busy"
    kind = "upstream_connections"

    def __init__(self) -> None:
        super().__init__(
            "The gateway is at its limit of open upstream connections. Retry in a second.",
            headers={"retry-after": "1"},
        )
