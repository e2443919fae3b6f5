"""Typed errors: one tree, every error the proxy answers is a :class:`GatewayError`. Each carries what all error
shapes need (status, Databricks ``error_code``, OpenAI ``type``/``code``, ``param``, headers); they are mapped
once: to a body by :mod:`modelgate_proxy.error_shapes`, to a response by
:func:`modelgate_proxy.server.error_responses.error_response`. Transport failures (aiohttp errors, timeouts)
become :class:`UpstreamTimeout` / :class:`UpstreamUnavailable` in one place,
:func:`modelgate_proxy.upstream.transport_error`.

    GatewayError                      500 INTERNAL_ERROR     (anything unexpected, "internal error")
    +-- BadRequest                    400 INVALID_PARAMETER_VALUE
    |   +-- MalformedRequest          400 MALFORMED_REQUEST
    |   +-- UnsupportedMediaType      415
    |   +-- PayloadTooLarge           413 REQUEST_TOO_LARGE
    |   +-- UnsupportedTask           400
    |   +-- ProviderRetired           410 INVALID_STATE      (PaLM)
    |   +-- GuardrailBlocked          400                    (OpenAI code content_filter)
    +-- AuthenticationFailed          401 UNAUTHENTICATED
    |   +-- Unauthenticated           401                    (with WWW-Authenticate: Bearer; the identity stage)
    +-- PermissionDenied              403 PERMISSION_DENIED
    |   +-- QueryDenied               403                    (no ``query`` on the endpoint, Kubernetes RBAC)
    +-- IdentityUnavailable           503 TEMPORARILY_UNAVAILABLE (API server or OIDC issuer cannot be asked)
    +-- EndpointNotFound              404 RESOURCE_DOES_NOT_EXIST
    +-- ResourceAlreadyExists         409 RESOURCE_ALREADY_EXISTS (management API: create of an existing endpoint)
    +-- ResourceConflict              409 RESOURCE_CONFLICT  (management API: changed concurrently, retry)
    +-- ManagedByGitOps               400 INVALID_STATE      (management API: a GitOps-managed endpoint, refused)
    +-- RateLimited                   429 REQUEST_LIMIT_EXCEEDED
    +-- RateLimitsUnavailable         503 TEMPORARILY_UNAVAILABLE (the shared counters unreachable, policy closed)
    +-- GuardrailUnavailable          503 TEMPORARILY_UNAVAILABLE (no verdict from the judge, policy FAIL_CLOSED)
    +-- ProviderConfigError           503 INVALID_STATE      (adapter or credential cannot work)
    +-- UpstreamError                 the provider's status  (the provider answered an error)
    +-- UpstreamUnavailable           502 BAD_GATEWAY        (connection refused, DNS, TLS, stream cut)
    |   +-- UpstreamUnreachable       502                    (no answer at all: the request was not taken)
    +-- ProvidersCooledDown           429 REQUEST_LIMIT_EXCEEDED (every usable entity is cooling down)
    +-- UpstreamTimeout               504 DEADLINE_EXCEEDED
    |   +-- FirstByteTimeout          504                    (a stream sent no byte in time; fallbacks on)
    +-- BadUpstreamResponse           502 BAD_GATEWAY        (a 2xx answer that cannot be read)
    +-- server.databricks_reads.ManagedByKubernetes  501 NOT_IMPLEMENTED  (write calls of the read API)

Messages must never contain a credential: they are shown to callers and logged.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base of every error the proxy turns into an HTTP response."""

    status: int = 500
    error_code: str = "INTERNAL_ERROR"  # Databricks shape
    error_type: str = "api_error"  # OpenAI shape
    openai_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.chunks_before: list[dict[str, Any]] = []
        """In a stream: the OpenAI-format chunks decoded before the error, from the same provider bytes; they
        are sent to the caller ahead of the error event."""
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = headers or {}


class BadRequest(GatewayError):
    status = 400
    error_code = "INVALID_PARAMETER_VALUE"
    error_type = "invalid_request_error"


class MalformedRequest(BadRequest):
    error_code = "MALFORMED_REQUEST"


class UnsupportedMediaType(BadRequest):
    status = 415


class PayloadTooLarge(BadRequest):
    status = 413
    error_code = "REQUEST_TOO_LARGE"


class AuthenticationFailed(GatewayError):
    status = 401
    error_code = "UNAUTHENTICATED"
    error_type = "authentication_error"


class PermissionDenied(GatewayError):
    status = 403
    error_code = "PERMISSION_DENIED"
    error_type = "permission_error"


REALM = "modelgate"
"""The ``realm`` of the proxy's ``WWW-Authenticate: Bearer`` challenge."""


class Unauthenticated(AuthenticationFailed):
    """401 with a ``WWW-Authenticate: Bearer`` challenge (RFC 6750 section 3)."""

    def __init__(self, message: str, *, invalid_token: bool = True) -> None:
        challenge = f'Bearer realm="{REALM}"'
        if invalid_token:
            challenge += ', error="invalid_token"'
        super().__init__(message, headers={"WWW-Authenticate": challenge})


class QueryDenied(PermissionDenied):
    """403 naming the endpoint and the verb, never the credential."""

    def __init__(self, namespace: str, endpoint: str, verb: str = "query") -> None:
        super().__init__(
            f"the caller may not {verb} serving endpoint {endpoint!r} in namespace {namespace!r}: it needs the "
            f"{verb!r} verb on servingendpoints.serving.modelgate.io (bind the ClusterRole modelgate-query)"
        )


class IdentityUnavailable(GatewayError):
    """The Kubernetes API server or the OIDC issuer could not be asked (unreachable, timed out, answered an
    error): a check that could not be made is never an allow, and never a 401 that blames the caller."""

    status = 503
    error_code = "TEMPORARILY_UNAVAILABLE"
    error_type = "api_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "1"})


class EndpointNotFound(GatewayError):
    status = 404
    error_code = "RESOURCE_DOES_NOT_EXIST"
    error_type = "not_found_error"
    openai_code = "model_not_found"


class ResourceAlreadyExists(GatewayError):
    status = 409
    error_code = "RESOURCE_ALREADY_EXISTS"
    error_type = "invalid_request_error"


class ResourceConflict(GatewayError):
    status = 409
    error_code = "RESOURCE_CONFLICT"
    error_type = "invalid_request_error"


class ManagedByGitOps(GatewayError):
    status = 400
    error_code = "INVALID_STATE"
    error_type = "invalid_request_error"


class RateLimited(GatewayError):
    status = 429
    error_code = "REQUEST_LIMIT_EXCEEDED"
    error_type = "rate_limit_exceeded"
    openai_code = "rate_limit_exceeded"


class RateLimitsUnavailable(GatewayError):
    """The endpoint's rate limits cannot be checked (their shared store is unreachable) and its policy is to refuse
    calls meanwhile."""

    status = 503
    error_code = "TEMPORARILY_UNAVAILABLE"
    error_type = "api_error"


class UnsupportedTask(BadRequest):
    """The request's task does not match the endpoint, or the provider cannot do it."""


class ProviderRetired(BadRequest):
    """The endpoint names a provider API that no longer exists (PaLM); 410 Gone, with what to use instead."""

    status = 410
    error_code = "INVALID_STATE"


class ProviderConfigError(GatewayError):
    """The endpoint's provider configuration cannot work (e.g. a retired provider, an unreadable credential)."""

    status = 503
    error_code = "INVALID_STATE"
    error_type = "api_error"


class UpstreamError(GatewayError):
    """The provider answered with an error; ``status`` is the provider's (4xx/429/5xx)."""

    error_code = "UPSTREAM_ERROR"
    error_type = "api_error"

    def __init__(
        self, message: str, *, status: int, param: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, param=param, status=status, headers=headers)
        self.reset_in: float | None = None
        """Seconds until the provider says it has room again (its ``retry-after`` or rate-limit reset headers,
        read by :mod:`modelgate_proxy.stages.backpressure.hints`); ``None`` when it said nothing usable."""
        if status == 429:
            self.error_code, self.error_type, self.openai_code = "REQUEST_LIMIT_EXCEEDED", "rate_limit_exceeded", "rate_limit_exceeded"
        elif status == 400:
            self.error_code, self.error_type = "INVALID_PARAMETER_VALUE", "invalid_request_error"
        elif status in (401, 403):
            # The caller's credentials are fine; the endpoint's provider credential is not.
            self.error_code, self.error_type = "PERMISSION_DENIED", "permission_error"
        elif status == 404:
            self.error_code, self.error_type = "RESOURCE_DOES_NOT_EXIST", "not_found_error"


class UpstreamUnavailable(GatewayError):
    """The provider could not be reached (connection refused, DNS, TLS)."""

    status = 502
    error_code = "BAD_GATEWAY"


class UpstreamUnreachable(UpstreamUnavailable):
    """No answer at all came back (connection refused or reset before a response): safe to try again."""


class ProvidersCooledDown(RateLimited):
    """Every served entity the request may use answered 429 with a reset time that has not passed yet."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message, headers={"retry-after": str(max(1, int(seconds + 0.999)))})


class UpstreamTimeout(GatewayError):
    status = 504
    error_code = "DEADLINE_EXCEEDED"


class FirstByteTimeout(UpstreamTimeout):
    """A provider stream sent its headers but no byte within the first-byte timeout (fallbacks try the next)."""


class BadUpstreamResponse(GatewayError):
    """The provider answered 2xx with something we cannot read."""

    status = 502
    error_code = "BAD_GATEWAY"


class GuardrailBlocked(BadRequest):
    """An AI Gateway guardrail refused the request or the answer; the message names the guardrail, never the text."""

    openai_code = "content_filter"


class GuardrailUnavailable(GatewayError):
    """A judged guardrail (``safety``, ``validTopics``) could not get a verdict and its failure policy is
    ``FAIL_CLOSED``; the message names the guardrail and what failed, never the text."""

    status = 503
    error_code = "TEMPORARILY_UNAVAILABLE"
    openai_code = "guardrail_unavailable"


class RequestHeadTooLarge(PayloadTooLarge):
    """The request line and headers pass the documented limit."""

    status = 431


class RequestTimedOut(BadRequest):
    """The caller took too long to send its request head or body."""

    status = 408
    error_code = "DEADLINE_EXCEEDED"


class Overloaded(GatewayError):
    """The proxy is at a bound of its own (the bytes of requests in flight); the caller may retry later."""

    status = 503
    error_code = "TEMPORARILY_UNAVAILABLE"


class DeadlineExceeded(UpstreamTimeout):
    """The request passed its total deadline (``--request-timeout``)."""


def failure_reason(err: GatewayError) -> str:
    """A bounded metric label for why a provider call failed (retries, fallbacks, cool-downs): ``connect``,
    ``first_byte``, ``timeout``, ``cooled_down``, the status for 429/500/502/503/504, else ``5xx`` or ``4xx``."""
    if isinstance(err, UpstreamUnreachable):
        return "connect"
    if isinstance(err, FirstByteTimeout):
        return "first_byte"
    if isinstance(err, ProvidersCooledDown):
        return "cooled_down"
    if isinstance(err, UpstreamTimeout):
        return "timeout"
    if err.status in (429, 500, 502, 503, 504):
        return str(err.status)
    return "5xx" if err.status >= 500 else "4xx"
