"""The tracer of one serving process: OpenTelemetry's SDK, spans batched to an OTLP/HTTP
collector on the SDK's own thread (never on the request path), or nothing at all.

Tracing is on when `--otlp-endpoint` (MG_OTLP_ENDPOINT) or the SDK's own
OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, unless
OTEL_SDK_DISABLED=true. The other OTEL_* variables the SDK reads apply as usual (headers,
timeouts, the batch sizes, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, and the sampler:
OTEL_TRACES_SAMPLER and its argument, unless `--otel-sample-ratio` says otherwise).

Sampling: `--otel-sample-ratio`, else OTEL_TRACES_SAMPLER, else parent-based with 1 new trace
in 10 (DEFAULT_SAMPLE_RATIO), not the SDK's keep-everything: what platform teams run in
production, as enough to see every route, error and latency band at a gateway's request
rates, for a tenth of the export. A client's sampled trace is always continued.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from gateway.tracing import spans
from gateway.tracing.conventions import SCHEMA_URL

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

TRACES_PATH = "/v1/traces"
DEFAULT_SAMPLE_RATIO = 0.1
"""Share of new traces kept when neither the flag nor OTEL_TRACES_SAMPLER says."""

_SDK_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


@dataclass(frozen=True, slots=True)
class Tracing:
    """A serving process's tracer and the provider that exports its spans."""

    tracer: Tracer
    provider: TracerProvider

    def shutdown(self) -> None:
        """Export what is batched (bounded by the SDK's export timeout), then stop."""
        self.provider.shutdown()


def tracing_enabled(otlp_endpoint: str | None, environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(otlp_endpoint) or any(environ.get(name) for name in _SDK_ENDPOINTS)


def traces_url(otlp_endpoint: str) -> str:
    """The collector's traces URL from a base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is read
    (`http://collector:4318` sends to `/v1/traces`); a URL already naming it is kept."""
    base = otlp_endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def create_tracing(
    otlp_endpoint: str | None,
    sample_ratio: float | None,
    instance: str = "",
    environ: Mapping[str, str] = os.environ,
) -> Tracing | None:
    """The process's tracing, or None when it is off (then no span is ever created)."""
    if not tracing_enabled(otlp_endpoint, environ):
        return None
    # The SDK and the exporter load only when tracing is on.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

    attributes: dict[str, str] = {"service.version": _version()}
    if not environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = "modelgate"
    if instance:
        attributes["service.instance.id"] = instance
    if sample_ratio is None and not environ.get("OTEL_TRACES_SAMPLER"):
        sample_ratio = DEFAULT_SAMPLE_RATIO
    # No sampler: the SDK's own from OTEL_TRACES_SAMPLER.
    sampler: Sampler | None = (
        ParentBased(TraceIdRatioBased(sample_ratio)) if sample_ratio is not None else None
    )
    provider = TracerProvider(
        sampler=sampler, resource=Resource.create(attributes, schema_url=SCHEMA_URL)
    )
    # No endpoint given: the exporter reads the SDK's variables.
    exporter = OTLPSpanExporter(endpoint=traces_url(otlp_endpoint) if otlp_endpoint else None)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider.get_tracer("modelgate", _version(), schema_url=SCHEMA_URL), provider)


def _version() -> str:
    try:
        return version("modelgate")
    except PackageNotFoundError:
        return "0"


_running: Tracing | None = None


def start_tracing(
    otlp_endpoint: str | None, sample_ratio: float | None, instance: str = ""
) -> bool:
    """Turn tracing on in this serving process when configured; True when it is on."""
    global _running
    _running = create_tracing(otlp_endpoint, sample_ratio, instance)
    spans.install(_running.tracer if _running else None)
    return _running is not None


def stop_tracing() -> None:
    """Export the spans still batched, and turn tracing off (blocking: run on a thread)."""
    global _running
    running, _running = _running, None
    spans.install(None)
    if running is not None:
        running.shutdown()
