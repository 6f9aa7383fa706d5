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

Messages are written for the caller: they say what to do next and never carry upstream
URLs, credentials or key hashes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class Protocol(StrEnum):
    """The wire protocol a client speaks (decides the error shape)."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"


# status -> (OpenAI error type, Anthropic error type, Gemini status)
_SHAPES: dict[int, tuple[str, str, str]] = {
    400: ("invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
    401: ("invalid_request_error", "authentication_error", "UNAUTHENTICATED"),
    403: ("permission_error", "permission_error", "PERMISSION_DENIED"),
    404: ("invalid_request_error", "not_found_error", "NOT_FOUND"),
    408: ("timeout_error", "timeout_error", "DEADLINE_EXCEEDED"),
    409: ("invalid_request_error", "invalid_request_error", "ABORTED"),
    413: ("invalid_request_error", "request_too_large", "INVALID_ARGUMENT"),
    422: ("invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
    429: ("rate_limit_error", "rate_limit_error", "RESOURCE_EXHAUSTED"),
    500: ("server_error", "api_error", "INTERNAL"),
    502: ("upstream_error", "api_error", "UNAVAILABLE"),
    503: ("service_unavailable", "overloaded_error", "UNAVAILABLE"),
    504: ("timeout_error", "timeout_error", "DEADLINE_EXCEEDED"),
}


def error_shape(status: int) -> tuple[str, str, str]:
    if status in _SHAPES:
        return _SHAPES[status]
    return _SHAPES[400] if 400 <= status < 500 else _SHAPES[500]


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
        self._openai_type = openai_type

    def body(self, protocol: Protocol) -> dict[str, Any]:
        openai_type, anthropic_type, gemini_status = error_shape(self.status_code)
        if protocol is Protocol.ANTHROPIC:
            return {"type": "error", "error": {"type": anthropic_type, "message": self.message}}
        if protocol is Protocol.GEMINI:
            return {
                "error": {
                    "code": self.status_code,
                    "message": self.message,
                    "status": gemini_status,
                }
            }
        return {
            "error": {
                "message": self.message,
                "type": self._openai_type or openai_type,
                "param": self.param,
                "code": self.code,
            }
        }


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
