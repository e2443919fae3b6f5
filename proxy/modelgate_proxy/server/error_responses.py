"""The one function that turns a :class:`~modelgate_proxy.errors.GatewayError` into an HTTP response, in the
error shape of the caller's API (:mod:`modelgate_proxy.error_shapes`): the query routes, the read APIs, the
readiness probe and unrouted paths all answer errors through :func:`error_response`."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.responses import Response

from ..error_shapes import Shape, error_body
from ..errors import GatewayError


def error_response(shape: Shape, err: GatewayError, extra_headers: Iterable[tuple[bytes, bytes]] = ()) -> Response:
    """``err`` as a JSON response in ``shape``: its status, its own headers (e.g. ``retry-after``), then
    ``extra_headers`` (lower-case ASGI pairs the route adds). A Starlette response is an ASGI app, so the lean
    query routes send it with ``await response(scope, receive, send)``."""
    response = Response(error_body(shape, err), status_code=err.status, media_type="application/json",
                        headers=err.headers or None)
    response.raw_headers.extend(extra_headers)
    return response
