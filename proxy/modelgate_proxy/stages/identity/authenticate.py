"""The authenticating identity stage (``modelgate serve --auth-config FILE`` or ``--api-keys PATH``; serve refuses to
start without an authentication choice):
names the caller from its credential (:mod:`.auth_modes`) and checks that it may ``query`` the endpoint
(:mod:`.sar` or the configured authorizer). No or a bad credential is a 401 with ``WWW-Authenticate``, a denial a
403 naming the endpoint, an unreachable API server or issuer a 503, each in the route's error shape."""

from __future__ import annotations

from ...exchange import Exchange, Next, Result
from .auth_config import AuthRuntime
from .auth_modes import check_query


class Authenticate:
    __slots__ = ("endpoint", "namespace", "runtime")

    def __init__(self, runtime: AuthRuntime, namespace: str, endpoint: str) -> None:
        self.runtime = runtime
        self.namespace = namespace
        self.endpoint = endpoint

    async def __call__(self, ex: Exchange, call_next: Next) -> Result:
        principal = await self.runtime.authentication.principal(ex.headers)
        await check_query(self.runtime.authorizer, principal, self.namespace, self.endpoint)
        ex.principal = principal
        return await call_next(ex)
