"""The policy repository's files as frozen pydantic models.

The field docstrings are the policy reference users read: keep them exact. Every model
forbids unknown fields, so a typo in a policy file is an error, not a silent default.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from credentials.refs import leaves_directory
from policies.alerts import AlertsFile

ProviderType = Literal[
    "openai", "anthropic", "gemini", "azure-openai", "openai-compatible", "bedrock"
]
"""The wire protocol a provider speaks; decides the executor and the translator."""

CredentialRef = Annotated[str, StringConstraints(pattern=r"^(env|file):[A-Za-z0-9_.\-/]+$")]
"""Where a secret lives: `env:NAME` (an environment variable) or `file:NAME` (a file in the
credentials directory, read with surrounding whitespace stripped). Never the secret itself."""

KeyId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")]
KeyHash = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
NonNegative = Annotated[int, Field(ge=0, strict=True)]
Usd = Annotated[Decimal, Field(ge=0, decimal_places=6, allow_inf_nan=False)]
"""US dollars, to the micro-dollar at most (the gateway counts money in integer micros)."""
TeamName = KeyId
MICROS_PER_USD = 1_000_000


class Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", use_attribute_docstrings=True, str_strip_whitespace=True
    )


class Limits(Frozen):
    """Rate limits and token quotas; any field left out is not limited."""

    rpm: NonNegative | None = None
    """Requests per minute (sliding 60-second window)."""
    tpm: NonNegative | None = None
    """Tokens (prompt plus completion) per minute (sliding 60-second window)."""
    max_concurrency: NonNegative | None = None
    """Requests in flight at once."""
    tokens_per_day: NonNegative | None = None
    """Total tokens per calendar day; resets at 00:00 UTC."""
    tokens_per_month: NonNegative | None = None
    """Total tokens per calendar month; resets on the 1st at 00:00 UTC."""
    usd_per_day: Usd | None = None
    """Spend in US dollars per calendar day (e.g. 25 or 2.5); resets at 00:00 UTC. A request
    is admitted while the day's spend is below it, so requests in flight may overshoot it."""
    usd_per_month: Usd | None = None
    """Spend in US dollars per calendar month; resets on the 1st at 00:00 UTC."""
    enforce: Literal["on", "shadow"] | None = None
    """`on` (left out) or `shadow`: every limit of this block is counted exactly like an
    enforced one, but a request it would refuse is served and reported instead (the
    modelgate_shadow_refusals_total metric, the event's and request log's `shadow`). Switching
    to `on` is a one-line commit: the counts are the scope's, not the mode's, so they carry
    over."""
    shadow: Limits | None = None
    """Shadow limits beside this block's enforced ones, e.g. `{rpm: 100, shadow: {rpm: 50}}`
    to try a stricter rpm while 100 still applies; written like a `limits` block without
    `enforce` or `shadow`."""

    @field_validator("usd_per_day", "usd_per_month", mode="before")
    @classmethod
    def _a_number(cls, value: object) -> object:
        # YAML numbers only: a quoted "5" or a bool is a typo, not a budget.
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | None):
            raise ValueError("write an amount in US dollars as a number, e.g. 25 or 2.5")
        return value

    @field_validator("shadow")
    @classmethod
    def _plain_shadow(cls, value: Limits | None, info: ValidationInfo) -> Limits | None:
        if value is None:
            return None
        if info.data.get("enforce") == "shadow":
            raise ValueError(
                "this block says `enforce: shadow`, so all of it is shadow already: "
                "move these limits up into it, or drop `enforce: shadow`"
            )
        if value.enforce is not None or value.shadow is not None:
            raise ValueError(
                "a `shadow` block is all shadow: leave `enforce` and `shadow` out of it"
            )
        return value

    def split(self) -> tuple[Limits, Limits]:
        """(enforced, shadow): the limits of each mode as plain blocks (no enforce, no shadow)."""
        values = self.model_dump(exclude_none=True, exclude={"enforce", "shadow"})
        if self.enforce == "shadow":
            return _NO_LIMITS, Limits(**values) if values else _NO_LIMITS
        if self.shadow is None and self.enforce is None:
            return self, _NO_LIMITS
        enforced = Limits(**values) if values else _NO_LIMITS
        return enforced, self.shadow if self.shadow is not None else _NO_LIMITS

    def merged_over(self, base: Limits) -> Limits:
        """These limits, with every field left out taken from `base`, mode by mode (an
        enforced field overrides the base's enforced one, a shadow field its shadow one)."""
        own_on, own_shadow = self.split()
        base_on, base_shadow = base.split()
        on = own_on.model_dump(exclude_none=True)
        shadow = own_shadow.model_dump(exclude_none=True)
        merged_on = base_on.model_copy(update=on) if on else base_on
        merged_shadow = base_shadow.model_copy(update=shadow) if shadow else base_shadow
        if merged_shadow == _NO_LIMITS:
            return merged_on
        return merged_on.model_copy(update={"shadow": merged_shadow})


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""RFC 9110's token (the engine's check is gateway/upstream/http1.py)."""
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})

GOOGLE_CLOUD_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def _stays_inside(ref: str) -> str:
    kind, _, name = ref.partition(":")
    if kind == "file" and leaves_directory(name):
        raise ValueError(
            f"'{ref}' leaves the credentials directory: name a file inside it "
            "(file:NAME or file:DIR/NAME, without '..' or a leading '/')"
        )
    return ref


class OAuth2Grant(Frozen):
    """An OAuth2 refresh-token grant: the gateway trades the refresh token for access tokens."""

    token_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$")]
    """The authorization server's token endpoint."""
    client_id: Annotated[str, StringConstraints(min_length=1)]
    """The OAuth2 client id (not a secret)."""
    client_secret: CredentialRef | None = None
    """Where the client secret lives (env:NAME or file:NAME); left out for public clients."""
    refresh_token: CredentialRef
    """Where the refresh token lives (env:NAME or file:NAME)."""
    scope: str | None = None
    """Space-separated scopes to ask for; left out means the grant's own scopes."""

    @field_validator("client_secret", "refresh_token")
    @classmethod
    def _inside(cls, value: str | None) -> str | None:
        return None if value is None else _stays_inside(value)


class TokenCredential(Frozen):
    """A credential the gateway turns into short-lived access tokens itself, sent as Bearer.

    Write exactly one of `oauth2` or `google_service_account`.
    """

    oauth2: OAuth2Grant | None = None
    """An OAuth2 refresh-token grant."""
    google_service_account: CredentialRef | None = None
    """Where a Google service-account JSON key lives (file:NAME): its private key signs an
    RS256 JWT that the gateway exchanges at the key's `token_uri` (Vertex AI and other Google
    APIs)."""
    scopes: tuple[str, ...] = (GOOGLE_CLOUD_SCOPE,)
    """Scopes asked for with `google_service_account` (default: cloud-platform)."""

    def problem(self) -> str | None:
        """What is wrong with this entry as a whole (checked by Provider), or None."""
        if (self.oauth2 is None) == (self.google_service_account is None):
            return "write exactly one of 'oauth2' or 'google_service_account'"
        if self.oauth2 is not None and "scopes" in self.model_fields_set:
            return "'scopes' belongs to google_service_account; oauth2 takes 'scope'"
        return None

    @field_validator("google_service_account")
    @classmethod
    def _inside(cls, value: str | None) -> str | None:
        return None if value is None else _stays_inside(value)

    @property
    def label(self) -> str:
        """How status, logs and metrics name this credential: its references, never values."""
        if self.oauth2 is not None:
            return f"oauth2:{self.oauth2.refresh_token}"
        return f"google_service_account:{self.google_service_account}"

    def __str__(self) -> str:
        return self.label


class AwsKeys(Frozen):
    """Where the parts of an AWS access key live (env:NAME or file:NAME each)."""

    access_key_id: CredentialRef
    """The access key id (AKIA... or, for temporary keys, ASIA...)."""
    secret_access_key: CredentialRef
    """The secret access key."""
    session_token: CredentialRef | None = None
    """The session token of temporary keys (from STS); left out for long-term keys."""

    @field_validator("access_key_id", "secret_access_key", "session_token")
    @classmethod
    def _inside(cls, value: str | None) -> str | None:
        return None if value is None else _stays_inside(value)


class AwsCredential(Frozen):
    """An AWS access key that signs a bedrock provider's requests (SigV4)."""

    aws: AwsKeys
    """Where the key's parts live."""

    @property
    def label(self) -> str:
        """How status, logs and metrics name this credential: its references, never values."""
        return f"aws:{self.aws.access_key_id}"

    def __str__(self) -> str:
        return self.label


CredentialSpec = CredentialRef | TokenCredential | AwsCredential
"""One entry of a provider's credential pool: a reference, a token credential, or (bedrock
only) an AWS access key."""

_AWS_HOST = re.compile(r"^bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com$")
"""A Bedrock runtime endpoint of AWS, and its region."""


def _bedrock_problem(provider: Provider) -> str | None:
    """What is wrong with a provider's credentials or region for its type, or None."""
    for index, entry in enumerate(provider.credentials):
        aws = isinstance(entry, AwsCredential)
        if aws and provider.type != "bedrock":
            return (
                f"credentials entry {index + 1}: an 'aws' key signs bedrock requests only; a "
                f"{provider.type} provider takes env:NAME or file:NAME references or token "
                "credentials"
            )
        if not aws and provider.type == "bedrock":
            return (
                f"credentials entry {index + 1}: a bedrock provider signs its requests with "
                "an AWS access key: write {aws: {access_key_id: env:NAME, secret_access_key: "
                "env:NAME}} (and session_token for temporary keys), or leave credentials out "
                "to use the AWS default chain (environment, web identity, instance profile)"
            )
    if provider.type != "bedrock":
        return None
    if not provider.region:
        return "a bedrock provider needs 'region' (e.g. us-east-1): its requests are signed for it"
    host = _AWS_HOST.match(urlsplit(provider.base_url).hostname or "")
    if host is not None and host.group(1) != provider.region:
        return (
            f"base_url is the Bedrock endpoint of {host.group(1)} but region is "
            f"{provider.region}: AWS refuses a request signed for another region"
        )
    return None


class Provider(Frozen):
    """One upstream API endpoint and the pool of credentials used to call it."""

    type: ProviderType
    """Wire protocol: openai | anthropic | gemini | azure-openai | openai-compatible | bedrock."""
    base_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$")]
    """Root URL of the API, e.g. https://api.openai.com/v1 or http://127.0.0.1:11434/v1; Vertex
    AI: .../v1/projects/P/locations/L/publishers/google (gemini) or /publishers/anthropic."""
    credentials: tuple[CredentialSpec, ...] = ()
    """The credential pool: references (env:NAME, file:NAME), never values, or token
    credentials ({oauth2: {...}} or {google_service_account: file:NAME}). Empty: no auth.
    bedrock: AWS access keys only ({aws: {access_key_id: env:NAME, secret_access_key:
    env:NAME, session_token: env:NAME}}); empty: the AWS default chain (AWS_* environment
    variables, web identity, the instance or task role)."""
    selection: Literal["round-robin", "fill-first"] = "round-robin"
    """How the pool picks a credential: rotate on every request, or use the first usable one."""
    cooldown_s: Annotated[float, Field(ge=0)] = 60
    """Seconds a credential sits out after an upstream 429 or quota error; an upstream
    Retry-After replaces it, longer (up to max_cooldown_s) or shorter. A failed token
    refresh sits out as long."""
    max_cooldown_s: Annotated[float, Field(gt=0)] = 3600
    """The longest an upstream's Retry-After (or Gemini retryDelay) may sit a credential
    out; a longer one is cut to this, so an upstream cannot bench a credential for years."""
    timeout_s: Annotated[float, Field(gt=0)] = 300
    """Total seconds one upstream attempt may take, streams included."""
    connect_timeout_s: Annotated[float, Field(gt=0)] = 10
    """Seconds to establish the upstream connection."""
    first_byte_timeout_s: Annotated[float, Field(gt=0)] | None = None
    """Seconds from the start of an attempt to the upstream's response headers (default:
    timeout_s). A stream's wait for its headers is also bounded by idle_timeout_s."""
    idle_timeout_s: Annotated[float, Field(gt=0)] | None = None
    """Seconds a stream may stay silent between chunks (default: timeout_s)."""
    max_retries: Annotated[int, Field(ge=0, le=10)] = 2
    """Retries of one target on 5xx, connection errors and timeouts, before failing over."""
    api_version: str | None = None
    """azure-openai: the api-version query parameter; anthropic: the anthropic-version header."""
    api: Literal["chat", "responses"] = "chat"
    """openai, azure-openai, openai-compatible: the API its models are called through.
    `responses` for models served only by the Responses API (the codex and pro lines):
    chat, Messages and Gemini clients then reach them translated."""
    region: str | None = None
    """bedrock: the AWS region its requests are signed for (e.g. us-east-1); required.
    Its base_url is the runtime endpoint, normally https://bedrock-runtime.REGION.amazonaws.com
    (a VPC endpoint or a test server otherwise); an AWS endpoint of another region is refused."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra headers sent upstream on every request (no secrets: use credentials). Names are
    HTTP tokens; values are one line; Content-Length and Transfer-Encoding are the gateway's."""

    @field_validator("headers")
    @classmethod
    def _one_line_headers(cls, value: dict[str, str]) -> dict[str, str]:
        # The upstream engine refuses such a header on every request; refuse the commit instead.
        for name, text in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(
                    f"header name {name!r} is not an HTTP token: use letters, digits and "
                    "!#$%&'*+-.^_`|~ only"
                )
            if name.lower() in _FRAMING_HEADERS:
                raise ValueError(f"header {name!r} is set by the gateway: remove it")
            if any(c in text for c in "\r\n\0"):
                raise ValueError(
                    f"the value of header {name!r} holds a line break or a NUL: write it on "
                    "one line"
                )
        return value

    @field_validator("credentials")
    @classmethod
    def _whole_entries(cls, value: tuple[CredentialSpec, ...]) -> tuple[CredentialSpec, ...]:
        for index, entry in enumerate(value):
            problem = entry.problem() if isinstance(entry, TokenCredential) else None
            if problem is not None:
                raise ValueError(f"entry {index + 1}: {problem}")
        return value

    @model_validator(mode="after")
    def _fits_type(self) -> Provider:
        problem = _bedrock_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self


class WeightedTarget(Frozen):
    """A route target with a weight, for the `weighted` strategy."""

    target: Annotated[str, StringConstraints(pattern=r"^[^/\s]+/.+$")]
    """provider/upstream-model."""
    weight: Annotated[float, Field(gt=0)] = 1
    """Relative share of requests."""


TargetSpec = Annotated[str, StringConstraints(pattern=r"^[^/\s]+/.+$")] | WeightedTarget


Operation = Literal["chat", "embeddings", "moderations", "images", "audio", "rerank", "batches"]
"""What a route may be marked for (Route.operations): `chat` is text generation in any
protocol (chat completions, completions, Responses, Messages, generateContent) and its token
counts; `images` covers generations and edits; `audio` speech, transcriptions and
translations; `batches` makes the route's provider the one that holds a key's files and
batches (/v1/files, /v1/batches: gateway/request/files_upstream.py)."""


class Route(Frozen):
    """Where requests for one model name (or glob of names) go."""

    targets: Annotated[tuple[TargetSpec, ...], Field(min_length=1)]
    """provider/upstream-model entries; with a glob route, `*` takes the matched part."""
    strategy: Literal["fallback", "round-robin", "weighted"] = "fallback"
    """fallback: in order, the next on failure; round-robin: rotate; weighted: by weight."""
    deadline_s: Annotated[float, Field(gt=0)] = 600
    """Seconds a request may spend reaching an upstream (every retry, backoff and failover
    until a first byte arrives); past it the client gets a 502. A stream that started is
    bounded by its provider's timeouts instead."""
    translation: Literal["lenient", "strict"] = "lenient"
    """When a request crosses protocols (say Claude Code to an OpenAI model): lenient drops
    the hints the provider's protocol cannot carry (sampling knobs such as `top_k`, client
    metadata, cache markers) and names them in the `x-modelgate-dropped-params` response
    header; strict refuses such a request with a 400 instead. Either way, what would change
    the answer (several choices, audio, stored conversations) is refused."""
    operations: tuple[Operation, ...] | None = None
    """The operations this route serves (say `[images]` for an image model); left out means
    all. A call of another operation to it is answered 404, as OpenAI answers a model that
    does not serve an endpoint."""
    description: str | None = None
    """Free text for operators."""


class Key(Frozen):
    """A client key: stored as the SHA-256 of its secret, never the secret."""

    id: KeyId
    """Stable identifier: usage, limits and logs are keyed by it."""
    hash: KeyHash
    """`sha256:` and the hex SHA-256 of the whole secret (`mg-...`)."""
    owner: str | None = None
    """Who to ask about this key."""
    description: str | None = None
    """Free text for operators."""
    models: tuple[str, ...] | None = None
    """Globs over route names this key may use; left out means all routes."""
    tier: str | None = None
    """A tier from limits.yaml; left out means the default limits."""
    limits: Limits | None = None
    """Overrides of the tier's limits, field by field."""
    team: TeamName | None = None
    """A team from teams.yaml: the team's limits and budgets (and its parents') apply too,
    and its `models` bound this key's."""
    expires: dt.date | None = None
    """Last day (UTC) the key is valid."""
    disabled: bool = False
    """A disabled key is refused with 401."""
    created: dt.date | None = None
    """When the key was created (set by `modelgate keys create`)."""

    @field_validator("models")
    @classmethod
    def _globs_compile(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        # Glob syntax is checked once per distinct pattern by the loader (policies.crosscheck);
        # translating here, once per key, was half the load time of a 10,000-key commit.
        if value is not None and not all(value):
            raise ValueError("an empty model glob matches nothing")
        return value


class Admin(Frozen):
    """An admin token for the operations API and the terminal UI."""

    id: KeyId
    """Stable identifier, shown in logs."""
    hash: KeyHash
    """`sha256:` and the hex SHA-256 of the whole token."""
    owner: str | None = None
    """Who holds it."""
    disabled: bool = False
    """A disabled token is refused with 401."""


class Team(Frozen):
    """A team: limits and budgets shared by its keys (and its sub-teams), and a model ceiling."""

    owner: str | None = None
    """Who to ask about this team (and who pays)."""
    description: str | None = None
    """Free text for operators."""
    parent: TeamName | None = None
    """The team this one belongs to: a request counts against this team and every ancestor,
    and is admitted only if all of them admit it."""
    limits: Limits = Limits()
    """Limits and budgets of the whole team: every request of its keys and sub-teams counts."""
    models: tuple[str, ...] | None = None
    """Globs over route names the team's keys may use at most; left out means all. A key may
    use a model only if its own `models` and those of its team and every ancestor allow it."""

    @field_validator("models")
    @classmethod
    def _globs_compile(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not all(value):
            raise ValueError("an empty model glob matches nothing")
        return value


class TeamsFile(Frozen):
    """teams.yaml."""

    teams: dict[TeamName, Team] = Field(default_factory=dict)
    """Teams by name; keys join one with `team:`."""


class ProvidersFile(Frozen):
    """providers.yaml."""

    providers: dict[str, Provider] = Field(default_factory=dict)
    """Upstreams by name; route targets name them."""


class RoutesFile(Frozen):
    """routes.yaml (the one required file)."""

    routes: dict[str, Route]
    """Model names clients send (or globs of them), and their targets."""


_NO_LIMITS = Limits()


class LimitsFile(Frozen):
    """limits.yaml."""

    default: Limits = Limits()
    """Limits of a key that names no tier."""
    tiers: dict[str, Limits] = Field(default_factory=dict)
    """Named sets of limits that keys refer to with `tier:`."""


class KeysFile(Frozen):
    """keys.yaml, or any file under keys/ (merged; a duplicate id is an error)."""

    keys: tuple[Key, ...] = ()
    """Client keys."""
    admins: tuple[Admin, ...] = ()
    """Admin tokens."""


PricePerMillion = Annotated[Decimal, Field(ge=0, decimal_places=6, allow_inf_nan=False)]
"""US dollars per million tokens (e.g. 0.15), to six decimal places at most."""
PricePattern = Annotated[str, StringConstraints(pattern=r"^[^/\s]+/\S+$")]


class TokenPrice(Frozen):
    """The price of one model at one provider, in US dollars per million tokens."""

    input: PricePerMillion
    """Prompt tokens that are neither read from nor written to a cache."""
    output: PricePerMillion
    """Completion tokens (reasoning tokens too, unless `reasoning` is given)."""
    cached_input: PricePerMillion | None = None
    """Prompt tokens read from a cache; left out: the input price."""
    cache_write: PricePerMillion | None = None
    """Prompt tokens written to a cache; left out: the input price."""
    reasoning: PricePerMillion | None = None
    """Reasoning (thinking) tokens; left out: the output price."""


class PricesFile(Frozen):
    """prices.yaml: overrides of (and additions to) the genai-prices catalog."""

    prices: dict[PricePattern, TokenPrice] = Field(default_factory=dict)
    """`PROVIDER/MODEL` globs (PROVIDER is a name in providers.yaml; `*` matches any run,
    `/` included) and their prices; the most specific match wins: an exact key, then the
    longest text before the first wildcard, then the most literal characters, then the
    first in the file. `local/*: {input: 0, output: 0}` makes a self-hosted provider free."""


class Policy(Frozen):
    """One commit of the policy repository, validated and merged."""

    providers: dict[str, Provider] = Field(default_factory=dict)
    routes: dict[str, Route] = Field(default_factory=dict)
    limits: LimitsFile = LimitsFile()
    keys: tuple[Key, ...] = ()
    admins: tuple[Admin, ...] = ()
    teams: dict[str, Team] = Field(default_factory=dict)
    prices: dict[str, TokenPrice] = Field(default_factory=dict)
    """prices.yaml's overrides, in file order."""
    alerts: AlertsFile = AlertsFile()
    """alerts.yaml: budget and quota alerts (policies/alerts.py)."""
