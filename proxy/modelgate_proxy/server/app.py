"""The app factory: query routes, health and readiness, metrics; the upstream client lives in the lifespan."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Iterable

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..budget import DEFAULT_MAX_INFLIGHT_BYTES, ByteBudget
from ..credentials import FileCredentials
from ..endpoints.build import add_judge_endpoints, build_endpoints
from ..endpoints.services import GatewayServices, GatewaySettings
from ..error_shapes import Shape
from ..errors import EndpointNotFound, GatewayError, ProviderConfigError
from ..metrics import CONTENT_TYPE, Metrics
from ..spec import ServingEndpoint
from ..spec.capabilities import unsupported_guardrails
from ..upstream import Upstream, UpstreamSettings
from .body import DEFAULT_MAX_BODY_BYTES
from .error_responses import error_response
from .management import Management, ManagementSettings
from .query import OPENAI_PATHS, InvocationsRoute, OpenAIRoute
from .read_apis import read_routes, shape_for_path
from .state import GatewayState

log = logging.getLogger("modelgate")

_OPENAI_PATH_SET = frozenset(OPENAI_PATHS.values())

DEFAULT_REQUEST_TIMEOUT = 600.0
"""Ten minutes: room for a long reasoning answer; an endpoint can set its own (``spec.proxy``)."""


def create_app(
    endpoints: Iterable[ServingEndpoint],
    *,
    gateway: GatewaySettings,
    credentials: FileCredentials | None = None,
    upstream: UpstreamSettings | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    management: ManagementSettings | None = None,
    judges: Iterable[ServingEndpoint] = (),
) -> GatewayApp:
    """The proxy app serving ``endpoints``. ``app.state.gateway`` is the :class:`GatewayState`.
    ``gateway`` holds the AI Gateway layers' process-wide options: the authentication choice (required, there is
    no open default: :data:`~..endpoints.services.NO_AUTH` is the explicit opt-out), rate-limit replicas, record
    destinations. ``max_inflight_bytes`` bounds the bytes of requests in flight (:mod:`..budget`);
    ``request_timeout`` is the total seconds a query request may take unless its endpoint sets its own;
    ``judges`` are endpoints built only as guardrail judges of the others (never routed, ``--judge-file``)."""
    client = Upstream(upstream)
    metrics = Metrics()
    creds = credentials or FileCredentials(None)
    services = GatewayServices(gateway, metrics)
    served = build_endpoints(endpoints, creds, client, metrics, services)
    add_judge_endpoints(services, build_endpoints(judges, creds, client, metrics, services))
    state = GatewayState(
        endpoints=served,
        upstream=client,
        metrics=metrics,
        credentials=creds,
        max_body_bytes=max_body_bytes,
        services=services,
        budget=ByteBudget(max_inflight_bytes),
        request_timeout=request_timeout,
    )
    warnings = gateway_warnings(state)
    if management is not None and services.auth is None:
        raise ValueError("the management API needs authentication: pass an auth config (--auth-config)")
    manager = Management(management, state) if management is not None else None

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await client.start()
        await services.start()
        if manager is not None:
            await manager.start()
        for problem in readiness_problems(state):  # said at start-up, not only by /readyz and failed requests
            log.warning("not ready: %s", problem)
        # What exists now (modules, models, the endpoints' runtimes) lives as long as the process: out of the
        # collector's sight, a full collection no longer walks it (tens of ms, once per many allocations, in the
        # middle of whichever request triggered it).
        gc.freeze()
        try:
            yield
        finally:
            if manager is not None:
                await manager.close()
            await services.stop()
            await client.close()

    async def healthz(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def readyz(_request: Request) -> Response:
        problems = readiness_problems(state)
        endpoint_warnings: list[str] = []
        if manager is not None and state.upstream.started:
            # A workspace gateway stays ready when one of its namespace's endpoints cannot serve: that endpoint's
            # queries fail with the reason, and the others go on (its GET shows the entity's state).
            endpoint_warnings, problems = problems, []
        limit_problems, limit_warnings = services.readiness()
        problems.extend(limit_problems)
        if problems:
            return error_response("databricks", ProviderConfigError("; ".join(problems)))
        body: dict[str, object] = {"status": "ready", "authentication": services.authentication()}
        if warnings or limit_warnings or endpoint_warnings:
            body["warnings"] = [*warnings, *limit_warnings, *endpoint_warnings]
        return Response(orjson.dumps(body), media_type="application/json")

    async def metrics_route(_request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    query_routes: dict[str, ASGIApp] = {path: OpenAIRoute(state, task) for task, path in OPENAI_PATHS.items()}
    invocations = InvocationsRoute(state)
    routes = [
        *(Route(path, handler, methods=["POST"]) for path, handler in query_routes.items()),
        Route("/serving-endpoints/{name}/invocations", invocations, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_route, methods=["GET"]),
        *read_routes(state, manager),
    ]
    app = GatewayApp(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},  # type: ignore[dict-item]
    )
    app.router.redirect_slashes = False  # a trailing slash is a 404 in the API's shape, not an empty 307
    app.query_routes = query_routes
    app.invocations = invocations
    app.state.gateway = state
    return app


_INVOCATIONS_PREFIX = "/serving-endpoints/"
_INVOCATIONS_SUFFIX = "/invocations"


class GatewayApp(Starlette):
    """Starlette, with the query routes served first and directly.

    The query routes are lean ASGI handlers that map every error they meet to a response themselves, so they
    need nothing of Starlette's middleware stack and router (which cost about a tenth of the proxy's CPU per
    request in a profile). Every other path, and a query path with another method, goes through Starlette as
    before: the same handlers answer, the same 404/405 shapes apply."""

    query_routes: dict[str, ASGIApp]
    invocations: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            handler = self.query_routes.get(path)
            if handler is None and path.startswith(_INVOCATIONS_PREFIX) and path.endswith(_INVOCATIONS_SUFFIX):
                name = path[len(_INVOCATIONS_PREFIX):-len(_INVOCATIONS_SUFFIX)]
                if name and "/" not in name:
                    scope["path_params"] = {"name": name}
                    handler = self.invocations
            if handler is not None:
                scope["app"] = self
                await handler(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def gateway_warnings(state: GatewayState) -> list[str]:
    """Judged guardrails (``safety``, ``validTopics``) without a judge model: neither the endpoint's
    ``aiGateway.guardrails.judge`` nor ``--guardrail-judge-*`` names one."""
    if state.services is not None and state.services.settings.guardrail_judge is not None:
        return []
    return [
        f"endpoint {endpoint.name!r}: {path} has no judge model; its requests follow the failure policy"
        for endpoint in state.endpoints.values()
        for path in unsupported_guardrails(endpoint.spec)
    ]


def readiness_problems(state: GatewayState) -> list[str]:
    """Why the proxy cannot serve every entity: not started, an adapter missing, a credential unreadable."""
    problems: list[str] = []
    if not state.upstream.started:
        problems.append("the upstream client is not started")
    for endpoint in state.endpoints.values():
        for entity in endpoint.entities:
            if entity.problem is not None:
                problems.append(f"endpoint {endpoint.name!r}, served entity {entity.name!r}: {entity.problem}")
        for field, reference in endpoint.references:
            try:
                state.credentials.check(reference, field=field)
            except GatewayError as err:
                problems.append(f"endpoint {endpoint.name!r}: {err.message}")
    return problems


def _is_openai_path(path: str) -> bool:
    """The OpenAI client's paths: ``<base_url>/<operation>`` under ``/serving-endpoints/`` (responses, audio,
    images, ...), as opposed to the Databricks query path ``/serving-endpoints/{name}/invocations``."""
    return path in _OPENAI_PATH_SET or (path.startswith(_INVOCATIONS_PREFIX) and not path.endswith(_INVOCATIONS_SUFFIX))


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """Unknown paths and wrong methods, in the error shape of the API the path belongs to."""
    path = request.url.path
    api: Shape = shape_for_path(path) or ("openai" if _is_openai_path(path) else "databricks")
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 404:
        message = f"no route for {request.method} {path[:200]}"
        if api == "openai":
            served = ", ".join(OPENAI_PATHS.values())
            message += f" (this gateway serves the OpenAI API's {served} and /serving-endpoints/models)"
        err: GatewayError = EndpointNotFound(message, headers=headers)
    else:
        err = GatewayError(exc.detail or "request refused", status=exc.status_code, headers=headers)
        err.error_code = "BAD_REQUEST" if exc.status_code != 405 else "METHOD_NOT_ALLOWED"
        err.error_type = "invalid_request_error"
    return error_response(api, err)
