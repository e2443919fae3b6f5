"""The MLflow AI Gateway's surface, so ``mlflow.deployments.get_deploy_client("http://<proxy>")`` works as is:

- ``POST /endpoints/{name}/invocations`` (and the gateway's older ``/gateway/{name}/invocations``): the same
  query as ``/serving-endpoints/{name}/invocations`` (``stream: true`` answers server-sent events);
- ``GET /api/2.0/endpoints/`` → ``{"endpoints": [...], "next_page_token"?}``, paged with ``page_token``
  (base64 of ``{"index": n}``, as the MLflow gateway writes it);
- ``GET /api/2.0/endpoints/{name}`` → ``{name, endpoint_type, model {name, provider}, endpoint_url, limit}``.

With authentication on, the list (paged after filtering) holds only the endpoints the caller may query, and a get
of another is 403. Errors are FastAPI's ``{"detail": "..."}``, as the MLflow gateway answers (MLflow's client raises
``requests.HTTPError`` quoting the body). An error after a stream started is one event in the Databricks shape.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from ..error_shapes import Shape
from ..errors import BadRequest, EndpointNotFound
from .endpoint_views import mlflow_endpoint
from .query import InvocationsRoute
from .read_common import Viewer, read_route
from .state import GatewayState

CRUD_BASE = "/api/2.0/endpoints"
LIST_PAGE_SIZE = 3000
"""Endpoints per page of the list (the MLflow gateway's page size); read at call time."""


class GatewayInvocationsRoute(InvocationsRoute):
    """``/endpoints/{name}/invocations``: the Databricks invocations semantics, MLflow's error shape."""

    error_shape: Shape = "mlflow"


def encode_page_token(index: int) -> str:
    return base64.b64encode(orjson.dumps({"index": index})).decode()


def decode_page_token(token: str) -> int:
    try:
        index = orjson.loads(base64.b64decode(token, validate=True)).get("index")
    except (binascii.Error, ValueError, AttributeError):
        index = None
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise BadRequest("invalid page_token: it must be a next_page_token this server returned", param="page_token")
    return index


def mlflow_gateway_routes(state: GatewayState) -> list[BaseRoute]:
    async def list_endpoints(request: Request, viewer: Viewer) -> dict[str, Any]:
        token = request.query_params.get("page_token")
        start = decode_page_token(token) if token else 0
        runtimes = await viewer.visible(list(state.endpoints.values()))
        end = start + LIST_PAGE_SIZE
        out: dict[str, Any] = {"endpoints": [mlflow_endpoint(r) for r in runtimes[start:end]]}
        if end < len(runtimes):
            out["next_page_token"] = encode_page_token(end)
        return out

    async def get_endpoint(request: Request, viewer: Viewer) -> dict[str, Any]:
        name: str = request.path_params["name"]
        runtime = state.endpoints.get(name)
        if runtime is None:
            raise EndpointNotFound(
                f"The endpoint {name[:253]!r} is not present or active on the server. Please verify the endpoint name."
            )
        return mlflow_endpoint(await viewer.check(runtime))

    invocations = GatewayInvocationsRoute(state)
    listing = read_route(state, "mlflow", list_endpoints)
    return [
        Route("/endpoints/{name}/invocations", invocations, methods=["POST"]),
        Route("/gateway/{name}/invocations", invocations, methods=["POST"]),
        Route(CRUD_BASE + "/", listing, methods=["GET"]),
        Route(CRUD_BASE, listing, methods=["GET"]),
        Route(CRUD_BASE + "/{name}", read_route(state, "mlflow", get_endpoint), methods=["GET"]),
    ]
