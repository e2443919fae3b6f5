"""What the read-only API routes share: the caller's credential and which endpoints it may see, JSON answers,
errors in the API's shape."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..error_shapes import Shape
from ..errors import GatewayError, QueryDenied
from ..exchange import ANONYMOUS, EndpointRuntime, Principal
from ..stages.identity.authenticator import Authorizer
from .error_responses import error_response
from .state import GatewayState

log = logging.getLogger("modelgate.proxy")



class Viewer:
    """Which endpoints a read request's caller may see: those it may query (with authentication on; every endpoint
    otherwise). The authorizer's decisions are cached (the SubjectAccessReview cache)."""

    __slots__ = ("authorizer", "principal")

    def __init__(self, authorizer: Authorizer | None, principal: Principal = ANONYMOUS) -> None:
        self.authorizer = authorizer
        self.principal = principal

    async def visible(self, runtimes: Sequence[EndpointRuntime]) -> list[EndpointRuntime]:
        """``runtimes`` without those the caller may not query (asked concurrently)."""
        authorizer = self.authorizer
        if authorizer is None:
            return list(runtimes)
        allowed = await asyncio.gather(*(authorizer.may_query(self.principal, r.namespace, r.name) for r in runtimes))
        return [r for r, ok in zip(runtimes, allowed, strict=True) if ok]

    async def check(self, runtime: EndpointRuntime) -> EndpointRuntime:
        """``runtime``, or :class:`QueryDenied` (403, naming the endpoint and the verb) when the caller may not
        query it: describing an endpoint takes the same permission as querying it."""
        if self.authorizer is not None and not await self.authorizer.may_query(self.principal, runtime.namespace,
                                                                               runtime.name):
            raise QueryDenied(runtime.namespace, runtime.name)
        return runtime


ReadHandler = Callable[[Request, Viewer], Awaitable[Any]]
"""Answers a read request with a JSON-serialisable value, or raises :class:`GatewayError`."""
Endpoint = Callable[[Request], Awaitable[Response]]


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json", headers=headers)


async def check_caller(state: GatewayState, request: Request) -> Viewer:
    """With authentication on (``--auth-config``, ``--api-keys``), a read request needs a valid credential (401
    otherwise) and sees only the endpoints its principal may query; with ``--require-identity`` it needs the
    caller identity headers (401 otherwise), as the query routes do. Describing endpoints is not open to
    anonymous callers when queries are not."""
    services = state.services
    if services is None:
        return Viewer(None)
    if services.auth is not None:
        principal = await services.auth.authentication.principal(request.scope["headers"])
        return Viewer(services.auth.authorizer, principal)
    if services.settings.identity.required:
        services.identity.read(request.scope["headers"])
    return Viewer(None)


def read_route(state: GatewayState, shape: Shape, handler: ReadHandler) -> Endpoint:
    """A starlette endpoint: identity check, ``handler``'s value as JSON, a :class:`GatewayError` in ``shape``."""

    async def endpoint(request: Request) -> Response:
        try:
            viewer = await check_caller(state, request)
            return json_response(await handler(request, viewer))
        except GatewayError as err:
            return error_response(shape, err)
        except Exception:
            log.exception("unexpected error while answering %s %s", request.method, request.url.path[:200])
            return error_response(shape, GatewayError("internal error in the proxy"))

    return endpoint
