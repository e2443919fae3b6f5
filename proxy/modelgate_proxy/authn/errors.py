"""The typed errors of authentication and authorization, subclasses of the proxy's one error tree
(:mod:`modelgate_proxy.errors`), so ``server/error_shapes.py`` maps them like every other error. They move into
``errors.py`` when the identity stage is wired."""

from __future__ import annotations

from ..errors import AuthenticationFailed, GatewayError, PermissionDenied

REALM = "modelgate"


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
    """The API server or the OIDC issuer could not be asked (unreachable, timed out, answered an error): 503."""

    status = 503
    error_code = "TEMPORARILY_UNAVAILABLE"
    error_type = "api_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "1"})
