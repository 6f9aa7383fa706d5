"""SigV4 for bedrock providers: the key (a policy's {aws: ...} entry or AWS's default chain),
the signed headers, and the policy's refusals. Signatures are checked by recomputing them
(tests/support/fake_bedrock.py), and end to end through the gateway's own HTTP engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from botocore.credentials import Credentials, RefreshableCredentials
from pydantic import ValidationError

from credentials.aws_keys import AwsAccessKey
from credentials.pool import Credential, CredentialPools, CredentialResolver
from credentials.refs import AllowedRefs, CredentialUnavailable
from gateway.protocols.bedrock import BEDROCK
from gateway.upstream import aws_signing
from gateway.upstream.aws_event_stream import EventStreamParser
from gateway.upstream.aws_signing import DefaultChain, sign_headers
from gateway.upstream.upstream_errors import Verdict, verdict
from gateway.usage.tokens import Usage
from gateway.vocabulary import Op
from policies.allowed_refs import refused_refs
from policies.models import Provider, ProvidersFile
from tests.support.fake_bedrock import FakeBedrock, Reply, signature_problem

KEY = AwsAccessKey("AKIAFAKEKEYFORTESTS0", "fake-secret-for-tests-only")
TEMP = AwsAccessKey("ASIAFAKETEMPKEYTESTS", "fake-temp-secret", "fake-session-token")
KEYS = {k.access_key_id: (k.secret_access_key, k.session_token) for k in (KEY, TEMP)}
URL = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m%3A0/converse"
BODY = b'{"messages":[]}'
AWS = {"aws": {"access_key_id": "env:A", "secret_access_key": "env:B"}}


def bedrock(
    base_url: str = "https://bedrock-runtime.us-east-1.amazonaws.com", **kw: Any
) -> Provider:
    return Provider.model_validate(
        {"type": "bedrock", "base_url": base_url, "region": "us-east-1", **kw}
    )


# ------------------------------------------------------------------ the signed headers


def test_the_headers_botocore_adds_verify() -> None:
    headers = sign_headers(
        KEY, "us-east-1", "POST", URL, {"content-type": "application/json"}, BODY
    )
    assert headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY.access_key_id}/")
    assert "/us-east-1/bedrock/aws4_request" in headers["Authorization"]
    assert "SignedHeaders=content-type;host;x-amz-date," in headers["Authorization"]
    assert "X-Amz-Security-Token" not in headers
    lower = {k.lower(): v for k, v in headers.items()} | {
        "host": "bedrock-runtime.us-east-1.amazonaws.com"
    }
    assert signature_problem("POST", URL, lower, BODY, KEYS, "us-east-1") is None
    assert signature_problem("POST", URL, lower, BODY + b" ", KEYS, "us-east-1") is not None
    assert KEY.secret_access_key not in repr(KEY) and KEY.secret_access_key not in str(headers)


def test_a_session_token_is_sent_and_signed() -> None:
    headers = sign_headers(TEMP, "us-east-1", "POST", URL, {}, BODY)
    assert headers["X-Amz-Security-Token"] == TEMP.session_token
    assert "x-amz-security-token" in headers["Authorization"].split("SignedHeaders=")[1]
    lower = {k.lower(): v for k, v in headers.items()} | {
        "host": "bedrock-runtime.us-east-1.amazonaws.com"
    }
    assert signature_problem("POST", URL, lower, BODY, KEYS, "us-east-1") is None
    stale = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)
    assert "expired" in (
        signature_problem("POST", URL, lower, BODY, KEYS, "us-east-1", stale) or ""
    )


# ------------------------------------------------------------------ through the engine


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    server = FakeBedrock(KEYS, "us-east-1").start()
    yield server
    server.stop()


async def send(
    client: httpx.AsyncClient,
    provider: Provider,
    key: AwsAccessKey | None,
    model: str,
    stream: bool,
) -> httpx.Response:
    """What the dispatcher does: the adapter's URL and headers, signed per attempt."""
    url = BEDROCK.upstream_url(provider, Op.CHAT, model, stream)
    headers = BEDROCK.auth_headers(provider, None)
    credential = Credential("aws:env:A", None, None, 1, aws=key)
    signed = await BEDROCK.sign(provider, credential, "POST", url, headers, BODY)
    request = client.build_request("POST", url, content=BODY, headers=signed)
    return await client.send(request, stream=stream)


@pytest.mark.parametrize(
    "model",
    [
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "us.anthropic.claude-sonnet-4-20250514-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-x-v1:0",
    ],
)
async def test_signed_requests_pass_the_fake_through_the_engine(
    fake: FakeBedrock, client: httpx.AsyncClient, model: str
) -> None:
    provider = bedrock(fake.url, headers={"x-team": "a"})
    response = await send(client, provider, TEMP, model, stream=False)
    assert response.status_code == 200, response.text
    assert fake.requests[-1].model == model
    assert fake.requests[-1].headers["x-team"] == "a"


async def test_a_stream_through_the_engine_and_the_parser(
    fake: FakeBedrock, client: httpx.AsyncClient
) -> None:
    fake.script(Reply(text="a b c", chunk_size=5))
    response = await send(client, bedrock(fake.url), KEY, "m", stream=True)
    parser = EventStreamParser()
    events = [e async for chunk in response.aiter_raw() for e in parser.feed(chunk)]
    await response.aclose()
    assert events[-1].event == "metadata"
    billed = Usage()
    BEDROCK.read_usage(orjson.loads(events[-1].data), billed)
    assert (billed.prompt_tokens, billed.completion_tokens) == (12, 5)


async def test_a_wrong_secret_is_refused_and_throttling_cools(
    fake: FakeBedrock, client: httpx.AsyncClient
) -> None:
    wrong = AwsAccessKey(KEY.access_key_id, "not-the-secret")
    refused = await send(client, bedrock(fake.url), wrong, "m", stream=False)
    assert refused.status_code == 403
    assert verdict(403, refused.content) is Verdict.REMOVE
    fake.script(Reply(throttle=True))
    throttled = await send(client, bedrock(fake.url), KEY, "m", stream=False)
    assert throttled.status_code == 429
    assert verdict(429, throttled.content) is Verdict.COOL


# ------------------------------------------------------------------ where the key comes from


def test_keys_come_from_the_credential_pool(tmp_path: Path) -> None:
    entry = {
        "aws": {
            "access_key_id": "env:A",
            "secret_access_key": "file:aws/secret",
            "session_token": "env:T",
        }
    }
    provider = bedrock(credentials=[entry])
    (tmp_path / "aws").mkdir()
    (tmp_path / "aws" / "secret").write_text("s3cret\n")
    pools = CredentialPools(CredentialResolver(tmp_path, {"A": "AKIAX", "T": "tok"}))
    (credential,) = pools.candidates("b", provider)
    assert credential.ref == "aws:env:A"
    assert credential.aws == AwsAccessKey("AKIAX", "s3cret", "tok")
    assert "s3cret" not in repr(credential)
    gone = CredentialPools(CredentialResolver(tmp_path, {"A": "AKIAX"}))
    reason = gone.usable("b", provider) or ""
    assert "aws:env:A" in reason and "variable T" in reason and "AKIAX" not in reason


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No AWS configuration from the machine, and no instance metadata service."""
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


async def test_the_default_chain_reads_the_environment(aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    aws_env.setenv("AWS_SESSION_TOKEN", "env-token")
    key = await DefaultChain().key()
    assert (key.access_key, key.secret_key, key.token) == ("AKIAFROMENV", "env-secret", "env-token")


async def test_no_key_anywhere_is_unavailable_for_a_while(aws_env: pytest.MonkeyPatch) -> None:
    now = [0.0]
    lookups = []

    def lookup() -> Credentials | None:
        lookups.append(1)
        return aws_signing._botocore_chain()

    chain = DefaultChain(lookup, clock=lambda: now[0])
    for _ in range(2):
        with pytest.raises(CredentialUnavailable, match="AWS_ACCESS_KEY_ID"):
            await chain.key()
    assert len(lookups) == 1
    now[0] = aws_signing.MISSING_RECHECK_S + 1
    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIALATER")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "later")
    assert (await chain.key()).access_key == "AKIALATER"


async def test_temporary_keys_are_refreshed_when_due() -> None:
    issued = []

    def refresh() -> dict[str, str]:
        issued.append(1)
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        return {
            "access_key": f"ASIA{len(issued)}",
            "secret_key": "s",
            "token": "t",
            "expiry_time": expiry.isoformat(),
        }

    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    metadata = {
        "access_key": "ASIA0",
        "secret_key": "s",
        "token": "t",
        "expiry_time": soon.isoformat(),
    }
    found = RefreshableCredentials.create_from_metadata(metadata, refresh, "test")
    chain = DefaultChain(lambda: found)
    assert (await chain.key()).access_key == "ASIA1"  # 30 s left: due
    assert (await chain.key()).access_key == "ASIA1"  # an hour left: kept
    assert len(issued) == 1


async def test_a_provider_without_credentials_signs_with_the_default_chain(
    fake: FakeBedrock, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        aws_signing,
        "DEFAULT",
        DefaultChain(lambda: Credentials(KEY.access_key_id, KEY.secret_access_key)),
    )
    monkeypatch.setattr(aws_signing.signing_key, "__defaults__", (aws_signing.DEFAULT,))
    response = await send(client, bedrock(fake.url), None, "m", stream=False)
    assert response.status_code == 200


# ------------------------------------------------------------------ the policy


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (
            {"type": "bedrock", "credentials": ["env:KEY"]},
            "signs its requests with an AWS access key",
        ),
        ({"type": "openai", "credentials": [AWS]}, "signs bedrock requests only"),
        ({"type": "bedrock", "region": None}, "needs 'region'"),
        ({"type": "bedrock", "region": "eu-west-1"}, "Bedrock endpoint of us-east-1"),
        (
            {"type": "bedrock", "credentials": [{"aws": {"access_key_id": "env:A"}}]},
            "secret_access_key",
        ),
        (
            {
                "type": "bedrock",
                "credentials": [
                    {"aws": {"access_key_id": "env:A", "secret_access_key": "file:../x"}}
                ],
            },
            "leaves the credentials directory",
        ),
    ],
)
def test_the_policy_refuses(spec: dict[str, Any], words: str) -> None:
    base = {"base_url": "https://bedrock-runtime.us-east-1.amazonaws.com", "region": "us-east-1"}
    with pytest.raises(ValidationError, match=words):
        Provider.model_validate(base | spec)


def test_the_policy_accepts_keys_a_vpc_endpoint_and_the_default_chain() -> None:
    assert bedrock(credentials=[AWS]).credentials[0].label == "aws:env:A"  # type: ignore[union-attr]
    assert bedrock("https://vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com").credentials == ()


def test_the_operators_env_prefix_covers_aws_keys() -> None:
    providers = ProvidersFile.model_validate(
        {"providers": {"b": bedrock(credentials=[AWS]).model_dump()}}
    )
    issues = refused_refs("providers.yaml", providers, AllowedRefs(("MG_",)))
    assert [issue.loc[-1] for issue in issues] == ["access_key_id", "secret_access_key"]
