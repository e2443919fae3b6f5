"""OpenAI's models API on the OpenAI base URL (``http://<proxy>/serving-endpoints``), so ``client.models.list()``
and ``client.models.retrieve(name)`` work: one model per served endpoint, ``id`` = the endpoint's name (the
``model`` to send). Errors are in the OpenAI shape (an unknown name is 404 ``model_not_found``).
With authentication on, the list holds only the endpoints the caller may query and retrieving another is 403
``permission_error``."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from ..errors import EndpointNotFound
from .endpoint_views import openai_model
from .read_common import Viewer, read_route
from .state import GatewayState

MODELS_PATH = "/serving-endpoints/models"


def openai_model_routes(state: GatewayState, created: int | None = None) -> list[BaseRoute]:
    """``created`` (Unix seconds) is reported for every model; default now, i.e. when the proxy loaded them."""
    loaded = int(time.time()) if created is None else created

    async def list_models(_request: Request, viewer: Viewer) -> dict[str, Any]:
        visible = await viewer.visible(list(state.endpoints.values()))
        return {"object": "list", "data": [openai_model(r, loaded) for r in visible]}

    async def retrieve_model(request: Request, viewer: Viewer) -> dict[str, Any]:
        name: str = request.path_params["name"]
        runtime = state.endpoints.get(name)
        if runtime is None:
            raise EndpointNotFound(
                f"The model {name[:253]!r} does not exist: there is no serving endpoint of that name", param="model"
            )
        return openai_model(await viewer.check(runtime), loaded)

    return [
        Route(MODELS_PATH, read_route(state, "openai", list_models), methods=["GET"]),
        Route(MODELS_PATH + "/{name}", read_route(state, "openai", retrieve_model), methods=["GET"]),
    ]
