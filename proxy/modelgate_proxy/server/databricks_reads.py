"""The Databricks serving-endpoints API, read side, as ``get_deploy_client("databricks")`` and the Databricks SDK
call it:

- ``GET /api/2.0/serving-endpoints`` (also with a trailing ``/``, as MLflow's client sends it) →
  ``{"endpoints": [<ServingEndpoint summary>]}``;
- ``GET /api/2.0/serving-endpoints/{name}`` → ``ServingEndpointDetailed`` (404 ``RESOURCE_DOES_NOT_EXIST``).

With authentication on, both need a credential, the list holds only the endpoints the caller may query, and a get
of another is 403 ``PERMISSION_DENIED`` (as Databricks answers without ``CAN_QUERY``/``CAN_VIEW``).

- ``GET /.well-known/databricks-config`` → ``{"oidc_endpoint": ""}``: the host-metadata document the Databricks
  SDK (under MLflow's client) probes on start; an empty ``oidc_endpoint`` says there is no OAuth discovery here,
  so the SDK keeps the token it was given, without the warning a 404 makes it log.

Writes (create, update config/tags/rate limits/AI Gateway, delete: ``POST``/``PUT``/``PATCH``/``DELETE``) answer
501 ``NOT_IMPLEMENTED``: endpoints are ``ServingEndpoint`` resources, changed with kubectl or GitOps, unless the
management API is on (:mod:`.management`, ``modelgate serve --management-namespace``), whose routes come first.
Errors are in the Databricks shape.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import EndpointNotFound, GatewayError
from .endpoint_views import databricks_detailed, databricks_summary
from .error_responses import error_response
from .read_common import Viewer, read_route
from .state import GatewayState

BASE = "/api/2.0/serving-endpoints"
HOST_METADATA = "/.well-known/databricks-config"
WRITE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]


class ManagedByKubernetes(GatewayError):
    status = 501
    error_code = "NOT_IMPLEMENTED"
    error_type = "invalid_request_error"


def read_only_error(method: str, *, managed: bool = False) -> ManagedByKubernetes:
    if managed:
        return ManagedByKubernetes(f"{method} is not available on this path: the management API serves create, "
                                   "get, list, config, ai-gateway, tags, rate-limits and delete")
    return ManagedByKubernetes(
        f"{method} is not available: this proxy serves ServingEndpoint resources "
        "(kind ServingEndpoint, apiVersion serving.modelgate.io/v1alpha1) and its serving-endpoints API is "
        "read-only; create, change or delete endpoints with kubectl apply/delete or your GitOps tool"
    )


def databricks_read_routes(state: GatewayState, *, managed: bool = False) -> list[BaseRoute]:
    async def list_endpoints(_request: Request, viewer: Viewer) -> dict[str, Any]:
        visible = await viewer.visible(list(state.endpoints.values()))
        return {"endpoints": [databricks_summary(r, state.credentials) for r in visible]}

    async def get_endpoint(request: Request, viewer: Viewer) -> dict[str, Any]:
        name: str = request.path_params["name"]
        runtime = state.endpoints.get(name)
        if runtime is None:
            raise EndpointNotFound(f"the serving endpoint {name[:253]!r} does not exist")
        return databricks_detailed(await viewer.check(runtime), state.credentials)

    async def refuse(request: Request) -> Response:
        if request.method in ("GET", "HEAD"):  # a read sub-resource this proxy does not have (openapi, logs...)
            return error_response("databricks", EndpointNotFound(f"no route for GET {request.url.path[:200]}"))
        return error_response("databricks", read_only_error(request.method, managed=managed))

    async def host_metadata(_request: Request) -> Response:
        return Response(b'{"oidc_endpoint":""}', media_type="application/json")

    listing = read_route(state, "databricks", list_endpoints)
    return [
        Route(HOST_METADATA, host_metadata, methods=["GET"]),
        Route(BASE, listing, methods=["GET"]),
        Route(BASE + "/", listing, methods=["GET"]),
        Route(BASE + "/{name}", read_route(state, "databricks", get_endpoint), methods=["GET"]),
        Route(BASE, refuse, methods=WRITE_METHODS),
        Route(BASE + "/{rest:path}", refuse, methods=["GET", *WRITE_METHODS]),
    ]
