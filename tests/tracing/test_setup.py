"""When tracing is on, where spans go, and the operation names of request paths."""

from __future__ import annotations

import pytest

from gateway.tracing.conventions import operation_name, provider_name
from gateway.tracing.setup import create_tracing, traces_url, tracing_enabled


def test_tracing_is_on_with_the_flag_or_the_sdks_variables_unless_the_sdk_is_disabled() -> None:
    assert not tracing_enabled(None, {})
    assert tracing_enabled("http://127.0.0.1:4318", {})
    assert tracing_enabled(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert tracing_enabled(None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/v1/traces"})
    assert not tracing_enabled("http://c:4318", {"OTEL_SDK_DISABLED": "true"})
    assert create_tracing(None, None, environ={}) is None


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("http://c:4318", "http://c:4318/v1/traces"),
        ("http://c:4318/", "http://c:4318/v1/traces"),
        ("https://c/otlp", "https://c/otlp/v1/traces"),
        ("http://c:4318/v1/traces", "http://c:4318/v1/traces"),
    ],
)
def test_the_endpoint_is_a_base_url_as_the_sdks_variable_is(given: str, url: str) -> None:
    assert traces_url(given) == url


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/v1/chat/completions", "chat"),
        ("/chat/completions", "chat"),
        ("/v1/messages", "chat"),
        ("/v1/responses", "chat"),
        ("/v1/completions", "text_completion"),
        ("/v1/embeddings", "embeddings"),
        ("/v1/messages/count_tokens", "count_tokens"),
        ("/v1beta/models/gemini-2.5-pro:streamGenerateContent", "generate_content"),
        ("/v1/models/gemini-2.5-pro:batchEmbedContents", "embeddings"),
        ("/v1/images/generations", "generations"),
    ],
)
def test_operation_names_follow_the_genai_conventions(path: str, operation: str) -> None:
    assert operation_name(path) == operation


def test_provider_names_are_the_conventions_well_known_values() -> None:
    assert provider_name("openai-compatible") == "openai"
    assert provider_name("gemini") == "gcp.gemini"
    assert provider_name("bedrock") == "aws.bedrock"
    assert provider_name("azure-openai") == "azure.ai.openai"


def test_new_traces_are_sampled_one_in_ten_unless_told_otherwise() -> None:
    endpoint = "http://127.0.0.1:4318"

    def sampler(ratio: float | None, environ: dict[str, str]) -> str:
        tracing = create_tracing(endpoint, ratio, environ=environ)
        assert tracing is not None
        try:
            # "ParentBased{root:X,remoteParentSampled:...}": the root's sampler
            return str(tracing.provider.sampler.get_description()).split(",")[0]
        finally:
            tracing.shutdown()

    assert sampler(None, {}) == "ParentBased{root:TraceIdRatioBased{0.1}"
    assert sampler(1.0, {}) == "ParentBased{root:TraceIdRatioBased{1.0}"
    # The variable set: the SDK's own sampler (it reads the variable itself).
    configured = {"OTEL_TRACES_SAMPLER": "parentbased_always_on"}
    assert sampler(None, configured) == "ParentBased{root:AlwaysOnSampler"
