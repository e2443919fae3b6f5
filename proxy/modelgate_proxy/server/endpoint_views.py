"""What the read APIs say about a served endpoint, built from its runtime (no HTTP here).

- Databricks ``ServingEndpointDetailed`` (``GET /api/2.0/serving-endpoints/{name}``) and the list's summary
  ``ServingEndpoint``, snake_case as Databricks answers;
- the MLflow AI Gateway's ``Endpoint`` ``{name, endpoint_type, model {name, provider}, endpoint_url, limit}``;
- OpenAI's ``Model`` ``{id, object, created, owned_by}``.

Never a credential: every ``*_plaintext`` field is dropped. Secret references (``{{secrets/<name>/<key>}}``) are
kept: they say where a credential lives, not what it is, and Databricks shows its own references the same way.
The Kubernetes-only ``proxy`` settings are left out (Databricks has no such field).
"""

from __future__ import annotations

from typing import Any

from ..credentials import FileCredentials
from ..endpoints.build import traffic_percentages
from ..errors import GatewayError
from ..exchange import EndpointRuntime, EntityRuntime
from ..spec.spec_model import SpecModel

ENDPOINT_TYPE = "EXTERNAL_MODEL"
OWNED_BY = "modelgate"
_PLAINTEXT_SUFFIX = "_plaintext"


def public_dump(model: SpecModel) -> dict[str, Any]:
    """``model`` in snake_case (the Databricks API's names are the spec's field names), without plaintext
    credentials."""
    dumped = _without_plaintext(model.model_dump(mode="json", exclude_none=True))
    assert isinstance(dumped, dict)
    return dumped


def _without_plaintext(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_plaintext(v) for k, v in value.items() if not k.endswith(_PLAINTEXT_SUFFIX)}
    if isinstance(value, list):
        return [_without_plaintext(v) for v in value]
    return value


def entity_problem(runtime: EndpointRuntime, entity: EntityRuntime, credentials: FileCredentials) -> str | None:
    """Why ``entity`` cannot serve (no adapter, an unreadable credential), or None. Stats credential files (one
    cheap syscall each, as /readyz does); reads nothing."""
    if entity.problem is not None:
        return entity.problem
    prefix = f"spec.servedEntities[{entity.index}]."
    for field, reference in runtime.references:
        if field.startswith(prefix):
            try:
                credentials.check(reference, field=field)
            except GatewayError as err:
                return err.message
    return None


def _entity_state(problem: str | None) -> dict[str, str]:
    if problem is None:
        return {"deployment": "DEPLOYMENT_READY", "deployment_state_message": ""}
    return {"deployment": "DEPLOYMENT_FAILED", "deployment_state_message": problem}


def _common(runtime: EndpointRuntime, ready: bool) -> dict[str, Any]:
    spec = runtime.spec
    out: dict[str, Any] = {
        "name": runtime.name,
        "state": {"ready": "READY" if ready else "NOT_READY", "config_update": "NOT_UPDATING"},
        "task": runtime.task,
        "endpoint_type": ENDPOINT_TYPE,
    }
    if spec.ai_gateway is not None:
        out["ai_gateway"] = public_dump(spec.ai_gateway)
    if spec.tags is not None:
        out["tags"] = [public_dump(tag) for tag in spec.tags]
    if spec.description is not None:
        out["description"] = spec.description
    return out


def databricks_detailed(runtime: EndpointRuntime, credentials: FileCredentials) -> dict[str, Any]:
    """The ``ServingEndpointDetailed`` body of ``GET /api/2.0/serving-endpoints/{name}``."""
    problems = [entity_problem(runtime, e, credentials) for e in runtime.entities]
    out = _common(runtime, all(p is None for p in problems))
    out["config"] = {
        "served_entities": [
            {"name": e.name, "external_model": public_dump(e.spec.external_model), "state": _entity_state(problem)}
            for e, problem in zip(runtime.entities, problems, strict=True)
        ],
        "traffic_config": {
            "routes": [
                {"served_entity_name": e.name, "traffic_percentage": pct}
                for e, pct in zip(runtime.entities, traffic_percentages(runtime.spec, runtime.entities), strict=True)
            ]
        },
    }
    return out


def databricks_summary(runtime: EndpointRuntime, credentials: FileCredentials) -> dict[str, Any]:
    """One item of ``GET /api/2.0/serving-endpoints``: the summary ``ServingEndpoint`` (no per-entity state, no
    traffic config)."""
    ready = all(entity_problem(runtime, e, credentials) is None for e in runtime.entities)
    out = _common(runtime, ready)
    out["config"] = {
        "served_entities": [{"name": e.name, "external_model": public_dump(e.spec.external_model)}
                            for e in runtime.entities]
    }
    return out


def mlflow_endpoint(runtime: EndpointRuntime) -> dict[str, Any]:
    """The MLflow AI Gateway ``Endpoint``. ``model`` is the served entity with the largest traffic share (the
    first on a tie); ``limit`` the endpoint-wide calls-per-minute limit, if there is one."""
    percentages = traffic_percentages(runtime.spec, runtime.entities)
    main = runtime.entities[percentages.index(max(percentages))].spec.external_model
    return {
        "name": runtime.name,
        "endpoint_type": runtime.task,
        "model": {"name": main.name, "provider": main.provider},
        "endpoint_url": f"/endpoints/{runtime.name}/invocations",
        "limit": _endpoint_limit(runtime),
    }


def _endpoint_limit(runtime: EndpointRuntime) -> dict[str, Any] | None:
    gateway = runtime.spec.ai_gateway
    for limit in (gateway.rate_limits or []) if gateway is not None else []:
        if limit.calls is not None and limit.key in (None, "endpoint"):
            return {"calls": limit.calls, "key": None, "renewal_period": limit.renewal_period}
    return None


def openai_model(runtime: EndpointRuntime, created: int) -> dict[str, Any]:
    """The OpenAI ``Model`` object; ``created`` is when this proxy loaded the endpoint (Unix seconds)."""
    return {"id": runtime.name, "object": "model", "created": created, "owned_by": OWNED_BY}
