"""What the read-only API routes share: caller identity when it is required, JSON answers, errors in the API's
shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..error_shapes import Shape
from ..errors import GatewayError
from .error_responses import error_response
from .state import GatewayState

log = logging.getLogger("modelgate.proxy")

ReadHandler = Callable[[Request], Awaitable[Any]]
"""Answers a read request with a JSON-serialisable value, or raises :class:`GatewayError`."""
Endpoint = Callable[[Request], Awaitable[Response]]


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json", headers=headers)


async def check_caller(state: GatewayState, request: Request) -> None:
    """With ``--require-identity``, a read request needs the caller identity headers too (401 otherwise), as the
    query routes do; with ``--auth-config`` it needs a valid credential (401 otherwise; which endpoints a caller
    may see is not yet filtered by its query permission). Describing endpoints is not open to anonymous callers
    when queries are not."""
    services = state.services
    if services is None:
        return
    if services.auth is not None:
        await services.auth.authentication.principal(request.scope["headers"])
    elif services.settings.identity.required:
        services.identity.read(request.scope["headers"])


def read_route(state: GatewayState, shape: Shape, handler: ReadHandler) -> Endpoint:
    """A starlette endpoint: identity check, ``handler``'s value as JSON, a :class:`GatewayError` in ``shape``."""

    async def endpoint(request: Request) -> Response:
        try:
            await check_caller(state, request)
            return json_response(await handler(request))
        except GatewayError as err:
            return error_response(shape, err)
        except Exception:
            log.exception("unexpected error while answering %s %s", request.method, request.url.path[:200])
            return error_response(shape, GatewayError("internal error in the proxy"))

    return endpoint
