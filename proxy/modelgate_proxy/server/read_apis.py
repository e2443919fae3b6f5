"""The routes that let official clients discover and use endpoints besides the query APIs: OpenAI's models
list, the Databricks serving-endpoints read API, and the MLflow AI Gateway surface; and which error shape an
unrouted path under them gets."""

from __future__ import annotations

from starlette.routing import BaseRoute

from ..error_shapes import Shape
from .databricks_reads import BASE as DATABRICKS_BASE
from .databricks_reads import databricks_read_routes
from .management import Management, management_routes
from .mlflow_gateway import CRUD_BASE, mlflow_gateway_routes
from .openai_models import MODELS_PATH, openai_model_routes
from .state import GatewayState

_MLFLOW_PREFIXES = ("/endpoints/", "/gateway/", CRUD_BASE)


def read_routes(state: GatewayState, management: Management | None = None) -> list[BaseRoute]:
    """With ``management``, the Databricks serving-endpoints API is the management API (backed by the API
    server, ahead of the read routes): ``GET`` there answers from the ServingEndpoint objects, the one source of
    truth, while the query routes serve the endpoints this process loaded."""
    databricks = databricks_read_routes(state, managed=management is not None)
    if management is not None:
        databricks = [*management_routes(state, management), *databricks]
    return [*openai_model_routes(state), *databricks, *mlflow_gateway_routes(state)]


def shape_for_path(path: str) -> Shape | None:
    """The error shape of an unknown path or wrong method under these APIs; None for the others' paths."""
    if path == MODELS_PATH or path.startswith(MODELS_PATH + "/"):
        return "openai"
    if path.startswith(_MLFLOW_PREFIXES):
        return "mlflow"
    if path.startswith(DATABRICKS_BASE):
        return "databricks"
    return None
