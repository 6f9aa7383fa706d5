"""Serving settings: command-line flags, each with an `MG_*` environment variable as default."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.upstream.proxy import DEFAULT_NO_PROXY

DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    policy_repo: Path = Path("var/policy")
    ref: str = "refs/heads/main"
    remote: str | None = None
    sync_interval: float = 10.0
    poll_interval: float = 0.5
    credentials_dir: Path = Path("credentials")
    state_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 18080
    redis_url: str | None = None
    workers: int = 1
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_connections: int = 1024
    """Open client connections per worker; a connection over it is closed on accept."""
    upstream_max_connections: int = 0
    """Open upstream connections per worker; 0: max_connections, lowered to what the
    open-files limit holds (gateway.upstream.transport.upstream_connection_cap)."""
    upstream_pool_timeout_s: float = 10.0
    """Seconds a request may wait for a free upstream connection; then 503."""
    backlog: int = 1024
    """The listen queue: connections the kernel holds until the loop accepts them."""
    max_inflight_body_mb: int = 256
    """Request-body MiB the running requests of one worker may hold; over it, 503."""
    body_timeout_s: float = 60.0
    """Seconds a client has to send a request body (and the most a head may pause)."""
    limits_fail_mode: str = "fail-open"
    webhook_secret: str | None = None
    """A credential reference (env:NAME or file:NAME) for push-webhook signatures."""
    credential_env_prefix: str = ""
    """Comma list: policies may name only environment variables starting with one of these."""
    log_level: str = "info"
    log_format: str = "text"
    events_buffer: int = 1000
    """Finished-request events kept for viewers that reconnect (Last-Event-ID)."""
    events_viewer_backlog: int = 1000
    """Events a live viewer may fall behind before it is dropped."""
    events_heartbeat_s: float = 15.0
    request_log_retention_days: float = 30.0
    upstream_proxy: str | None = None
    """http://[user:password@]host:port: upstream connections tunnel through it."""
    no_proxy: str = DEFAULT_NO_PROXY
    """Hosts reached directly, not through upstream_proxy (comma list; suffixes match)."""
    otlp_endpoint: str | None = None
    """OpenTelemetry collector base URL (OTLP/HTTP): traces go to its /v1/traces. Unset:
    the SDK's OTEL_EXPORTER_OTLP_ENDPOINT, if set, turns tracing on (gateway/tracing)."""
    otel_sample_ratio: float | None = None
    """Share of new traces kept (parent-based); None: the SDK's OTEL_TRACES_SAMPLER."""
    drain_grace_s: float = 5.0
    """After SIGTERM: seconds still serving, not ready, so load balancers move away."""
    drain_timeout_s: float = 60.0
    """Then: seconds in-flight requests and streams get to finish (streams are then cut)."""
    instance: str = ""
    """Set by `serve` for its worker processes: they share events on a channel of their own."""


def _env(environ: Mapping[str, str], name: str, default: str | None) -> str | None:
    return environ.get(f"MG_{name}", default)


def add_serve_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Flags of `modelgate serve`; each defaults to its MG_* variable, then the built-in default."""
    d = Settings()

    def opt(flag: str, env: str, default: object, **kw: object) -> None:
        value = _env(environ, env, None)
        parser.add_argument(flag, default=value if value is not None else default, **kw)  # type: ignore[arg-type]

    opt("--policy-repo", "POLICY_REPO", d.policy_repo, type=Path, help="policy git repository")
    opt("--ref", "REF", d.ref, help="the ref whose commits are applied")
    opt("--remote", "REMOTE", d.remote, help="git URL to fetch the policy from")
    opt("--sync-interval", "SYNC_INTERVAL", d.sync_interval, type=float, help="seconds")
    opt("--poll-interval", "POLL_INTERVAL", d.poll_interval, type=float, help="seconds")
    opt("--credentials-dir", "CREDENTIALS_DIR", d.credentials_dir, type=Path)
    opt("--state-dir", "STATE_DIR", d.state_dir, type=Path, help="usage database and state")
    opt("--host", "HOST", d.host)
    opt("--port", "PORT", d.port, type=int)
    opt("--redis-url", "REDIS_URL", d.redis_url, help="share limits across workers/machines")
    opt("--workers", "WORKERS", d.workers, type=int, help="serving processes (>1 needs Redis)")
    opt("--max-body-bytes", "MAX_BODY_BYTES", d.max_body_bytes, type=int)
    opt(
        "--max-connections",
        "MAX_CONNECTIONS",
        d.max_connections,
        type=int,
        help="open client connections per worker (one more is closed on accept)",
    )
    opt(
        "--upstream-max-connections",
        "UPSTREAM_MAX_CONNECTIONS",
        d.upstream_max_connections,
        type=int,
        help="open upstream connections per worker (default 0: --max-connections, lowered to "
        "what the open-files limit holds)",
    )
    opt(
        "--upstream-pool-timeout",
        "UPSTREAM_POOL_TIMEOUT",
        d.upstream_pool_timeout_s,
        type=float,
        help="seconds a request may wait for a free upstream connection (then 503)",
    )
    opt(
        "--backlog",
        "BACKLOG",
        d.backlog,
        type=int,
        help="listen queue length (the kernel caps it at net.core.somaxconn)",
    )
    opt(
        "--max-inflight-body-mb",
        "MAX_INFLIGHT_BODY_MB",
        d.max_inflight_body_mb,
        type=int,
        help="MiB of request bodies one worker's running requests may hold (then 503)",
    )
    opt(
        "--body-timeout",
        "BODY_TIMEOUT",
        d.body_timeout_s,
        type=float,
        help="seconds a client has to send a request body (then 408)",
    )
    opt(
        "--limits-fail-mode",
        "LIMITS_FAIL_MODE",
        d.limits_fail_mode,
        choices=["fail-open", "fail-closed"],
        help="what happens to requests while Redis is unreachable",
    )
    opt("--webhook-secret", "WEBHOOK_SECRET", d.webhook_secret, help="env:NAME or file:NAME")
    opt(
        "--credential-env-prefix",
        "CREDENTIAL_ENV_PREFIX",
        d.credential_env_prefix,
        metavar="PREFIXES",
        help="policies may name only env: credentials starting with one of these (comma list)",
    )
    opt("--log-level", "LOG_LEVEL", d.log_level, choices=["debug", "info", "warning", "error"])
    opt("--log-format", "LOG_FORMAT", d.log_format, choices=["text", "json"])
    opt("--events-buffer", "EVENTS_BUFFER", d.events_buffer, type=int, help="events kept")
    opt("--events-viewer-backlog", "EVENTS_VIEWER_BACKLOG", d.events_viewer_backlog, type=int)
    opt("--events-heartbeat", "EVENTS_HEARTBEAT", d.events_heartbeat_s, type=float)
    opt(
        "--upstream-proxy",
        "UPSTREAM_PROXY",
        d.upstream_proxy,
        help="http://[user:pass@]host:port egress proxy for upstream calls (CONNECT tunnels)",
    )
    opt("--no-proxy", "NO_PROXY", d.no_proxy, help="hosts reached without the proxy")
    opt(
        "--otlp-endpoint",
        "OTLP_ENDPOINT",
        d.otlp_endpoint,
        metavar="URL",
        help="send OpenTelemetry traces (OTLP/HTTP) to this collector, e.g. "
        "http://127.0.0.1:4318 (OTEL_EXPORTER_OTLP_ENDPOINT works too)",
    )
    opt(
        "--otel-sample-ratio",
        "OTEL_SAMPLE_RATIO",
        d.otel_sample_ratio,
        type=_ratio,
        metavar="RATIO",
        help="share of new traces kept, 0 to 1; a client's sampled trace is always continued "
        "(default: OTEL_TRACES_SAMPLER if set, else 0.1)",
    )
    opt(
        "--request-log-retention-days",
        "REQUEST_LOG_RETENTION_DAYS",
        d.request_log_retention_days,
        type=float,
        help="days of request log kept in the state dir (requests.sqlite3)",
    )
    opt(
        "--drain-grace",
        "DRAIN_GRACE",
        d.drain_grace_s,
        type=float,
        help="after SIGTERM: seconds still serving while /readyz says 503",
    )
    opt(
        "--drain-timeout",
        "DRAIN_TIMEOUT",
        d.drain_timeout_s,
        type=float,
        help="then: seconds in-flight requests and streams get before they are cut",
    )


def _ratio(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings(
        policy_repo=Path(args.policy_repo),
        ref=args.ref,
        remote=args.remote,
        sync_interval=float(args.sync_interval),
        poll_interval=float(args.poll_interval),
        credentials_dir=Path(args.credentials_dir),
        state_dir=Path(args.state_dir),
        host=args.host,
        port=int(args.port),
        redis_url=args.redis_url or None,
        workers=int(args.workers),
        max_body_bytes=int(args.max_body_bytes),
        max_connections=int(args.max_connections),
        upstream_max_connections=int(args.upstream_max_connections),
        upstream_pool_timeout_s=float(args.upstream_pool_timeout),
        backlog=int(args.backlog),
        max_inflight_body_mb=int(args.max_inflight_body_mb),
        body_timeout_s=float(args.body_timeout),
        limits_fail_mode=args.limits_fail_mode,
        webhook_secret=args.webhook_secret,
        credential_env_prefix=args.credential_env_prefix or "",
        log_level=args.log_level,
        log_format=args.log_format,
        events_buffer=int(args.events_buffer),
        events_viewer_backlog=int(args.events_viewer_backlog),
        events_heartbeat_s=float(args.events_heartbeat),
        request_log_retention_days=float(args.request_log_retention_days),
        upstream_proxy=args.upstream_proxy or None,
        no_proxy=args.no_proxy,
        otlp_endpoint=args.otlp_endpoint or None,
        otel_sample_ratio=args.otel_sample_ratio,
        drain_grace_s=float(args.drain_grace),
        drain_timeout_s=float(args.drain_timeout),
    )


def default_environ() -> Mapping[str, str]:
    return os.environ
