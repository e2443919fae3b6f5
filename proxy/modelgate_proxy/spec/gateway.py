"""The ``aiGateway`` block: usage tracking, payload logging, rate limits, guardrails and fallbacks."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from .rules import Rule, has
from .secrets import SecretReference
from .spec_model import SpecModel

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]*$", max_length=255, json_schema_extra={
    "x-modelgate-format": "must consist of letters, digits, '_' and '-', not starting with '-'"})]


class UsageTrackingConfig(SpecModel):
    """Per-request token usage records (and the usage metrics)."""

    enabled: bool = False
    """Record token usage for every request."""


class InferenceTableConfig(SpecModel):
    """Payload logging: request and response bodies of every call.

    The proxy writes one JSON record per request to its payload log; ``catalogName``, ``schemaName`` and
    ``tableNamePrefix`` name the destination as in Databricks and are written into every record.
    """

    enabled: bool = False
    """Log request and response payloads."""
    catalog_name: Identifier | None = None
    """Catalog of the inference table (required when enabled)."""
    schema_name: Identifier | None = None
    """Schema of the inference table (required when enabled)."""
    table_name_prefix: Identifier | None = None
    """Prefix of the table name; default the endpoint name."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!self.enabled || has(self.catalogName) && has(self.schemaName)",
            message="catalogName and schemaName are required when the inference table is enabled",
            check=lambda o: not o.enabled or (has(o, "catalog_name") and has(o, "schema_name")),
            field_path=".catalogName",
            reason="FieldValueRequired",
        ),
    )


class RateLimit(SpecModel):
    """A limit on calls and/or tokens per minute, for the whole endpoint or per caller."""

    calls: Annotated[int, Field(ge=0, le=1_000_000_000)] | None = None
    """Queries allowed per key per renewal period."""
    tokens: Annotated[int, Field(ge=0, le=1_000_000_000_000)] | None = None
    """Tokens (input + output) allowed per key per renewal period."""
    key: Literal["endpoint", "user", "user_group", "service_principal"] | None = None
    """What the limit counts against: ``endpoint`` (default), ``user``, ``user_group`` or ``service_principal``."""
    principal: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    """The user, group or service principal this limit applies to; without it, the default for every one."""
    renewal_period: Literal["minute"]
    """The window the limit renews over; only ``minute``."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="has(self.calls) || has(self.tokens)",
            message="a rate limit needs calls or tokens",
            check=lambda o: has(o, "calls") or has(o, "tokens"),
            field_path=".calls",
            reason="FieldValueRequired",
        ),
        Rule(
            cel="!has(self.principal) || has(self.key) && self.key != 'endpoint'",
            message="principal applies only to the user, user_group and service_principal keys",
            check=lambda o: not has(o, "principal") or o.key not in (None, "endpoint"),
            field_path=".principal",
            reason="FieldValueForbidden",
        ),
    )


class PiiConfig(SpecModel):
    """Personally identifiable information handling."""

    behavior: Literal["NONE", "BLOCK", "MASK"]
    """``BLOCK`` rejects a request or response with PII, ``MASK`` redacts it, ``NONE`` does nothing."""


class GuardrailParameters(SpecModel):
    """Checks applied to one direction of traffic."""

    safety: bool | None = None
    """Reject unsafe content."""
    pii: PiiConfig | None = None
    """PII detection and handling."""
    invalid_keywords: Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=256)] | None = None
    """Reject text that contains any of these keywords or strings."""
    valid_topics: Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=64)] | None = None
    """Reject text whose topic is not one of these."""


class GuardrailJudge(SpecModel):
    """The model that decides ``safety`` and ``validTopics`` (a modelgate extension; Databricks uses its own).

    Either another ServingEndpoint of the same namespace (``endpoint``, a chat endpoint) or an
    OpenAI-compatible chat API (``url`` + ``model``, with ``apiKey``); with neither, the proxy's
    ``--guardrail-judge-*`` options name it. ``safety`` follows the Llama Guard convention (the answer ``safe``
    or ``unsafe`` and the violated category codes); ``validTopics`` asks for ``on_topic`` / ``off_topic``.
    """

    endpoint: Annotated[str, Field(min_length=1, max_length=63)] | None = None
    """A chat ServingEndpoint of the same namespace that serves the judge model."""
    url: Annotated[str, Field(pattern=r"^https?://", max_length=2048)] | None = None
    """Base URL of an OpenAI-compatible API (``<url>/chat/completions`` is called), e.g. ``http://guard:8000/v1``."""
    model: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    """The ``model`` sent to ``url``."""
    api_key: SecretReference | None = None
    """Bearer credential for ``url``: a ``{{secrets/<name>/<key>}}`` reference."""
    timeout_seconds: Annotated[float, Field(ge=0.1, le=60)] = 5.0
    """How long one verdict may take."""
    failure_policy: Literal["FAIL_CLOSED", "LOG_ONLY"] = "FAIL_CLOSED"
    """When no verdict can be had (no judge, timeout, error, an answer that is not a verdict): ``FAIL_CLOSED``
    refuses with 503, ``LOG_ONLY`` logs, counts and lets the text pass."""
    safety_categories: Annotated[list[Annotated[str, Field(min_length=1, max_length=512)]],
                                 Field(max_length=64)] | None = None
    """The Llama Guard category list put in the safety prompt, each ``"S1: Violent Crimes."``; default the
    14 categories of Llama Guard 3 (docs/guardrails.md)."""
    cache_seconds: Annotated[int, Field(ge=0, le=3600)] = 60
    """How long a verdict is reused for the identical text (0: never)."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!(has(self.endpoint) && has(self.url))",
            message="a judge is either endpoint or url, not both",
            check=lambda o: not (has(o, "endpoint") and has(o, "url")),
            field_path=".url",
            reason="FieldValueForbidden",
        ),
        Rule(
            cel="!has(self.url) || has(self.model)",
            message="model is required with url",
            check=lambda o: not has(o, "url") or has(o, "model"),
            field_path=".model",
            reason="FieldValueRequired",
        ),
    )


class Guardrails(SpecModel):
    """Guardrails on what goes to the model and what comes back."""

    input: GuardrailParameters | None = None
    """Checks on the request."""
    output: GuardrailParameters | None = None
    """Checks on the response."""
    judge: GuardrailJudge | None = None
    """The model deciding ``safety`` and ``validTopics`` (modelgate extension)."""


class FallbackConfig(SpecModel):
    """Retry on other served entities when one fails."""

    enabled: bool = False
    """On a 429 or 5xx from a served entity, try the other served entities in list order."""


class AiGatewayConfig(SpecModel):
    """AI Gateway features of the endpoint."""

    usage_tracking_config: UsageTrackingConfig | None = None
    """Token usage tracking."""
    inference_table_config: InferenceTableConfig | None = None
    """Payload logging."""
    rate_limits: Annotated[list[RateLimit], Field(max_length=20)] | None = None
    """Rate limits; a request must pass every one that applies to it."""
    guardrails: Guardrails | None = None
    """Input and output guardrails."""
    fallback_config: FallbackConfig | None = None
    """Fallback to other served entities on errors."""
