"""A stored ServingEndpoint in Databricks' ``ServingEndpointDetailed`` shape (pure; no HTTP here).

- ``id``: the object's uid without dashes; ``creator``: the principal that created it through this API
  (:data:`CREATOR_ANNOTATION`; absent for objects applied with kubectl);
- ``creation_timestamp`` / ``last_updated_timestamp``: milliseconds, from ``metadata.creationTimestamp`` and the
  latest ``managedFields`` time;
- ``config_version``: ``metadata.generation``; ``state``: the operator's ``status.state``; while the operator has
  not yet reconciled the latest generation, ``config_update`` is ``IN_PROGRESS`` and the new config is
  ``pending_config`` (``config`` then says what the status reports as served, if anything);
- ``config.served_entities``, ``traffic_config``, ``tags``, ``ai_gateway``, ``route_optimized``: the Databricks
  body the object stands for (:func:`.bodies.databricks_body`), secret references with the original scope names.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from .bodies import databricks_body

CREATOR_ANNOTATION = "serving.modelgate.io/creator"
ENDPOINT_TYPE = "EXTERNAL_MODEL"


def _millis(timestamp: Any) -> int | None:
    if not isinstance(timestamp, str):
        return None
    try:
        return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def _last_updated(meta: dict[str, Any]) -> int | None:
    times = [m.get("time") for m in meta.get("managedFields") or [] if isinstance(m, dict)]
    stamps = [t for t in (_millis(x) for x in [meta.get("creationTimestamp"), *times]) if t is not None]
    return max(stamps) if stamps else None


def _snake(value: Any) -> dict[str, Any]:
    """A status object (camelCase, as the CRD stores it) in Databricks' snake_case."""
    if not isinstance(value, dict):
        return {}
    return {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): v for k, v in value.items()}


def _served_from_status(status: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for entity in status.get("servedEntities") or []:
        if isinstance(entity, dict):
            model = {k: entity[k] for k in ("provider",) if entity.get(k)}
            if entity.get("model"):
                model["name"] = entity["model"]
            out.append({"name": entity.get("name"), "external_model": model, "state": _snake(entity.get("state"))})
    return out


def detailed(obj: dict[str, Any], permission_level: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = obj.get("metadata") or {}
    status: dict[str, Any] = obj.get("status") or {}
    body = databricks_body(obj)
    generation = int(meta.get("generation") or 1)
    observed = status.get("observedGeneration")
    rolling = not isinstance(observed, int) or observed < generation
    state = _snake(status.get("state")) or {"ready": "NOT_READY", "config_update": "NOT_UPDATING"}
    if rolling:
        state["config_update"] = "IN_PROGRESS"
    states = {e["name"]: e["state"] for e in _served_from_status(status)}
    config: dict[str, Any] = {**body.get("config", {}), "config_version": generation}
    if not rolling:
        for entity in config.get("served_entities") or []:
            if isinstance(entity, dict) and entity.get("name") in states:
                entity["state"] = states[entity["name"]]
    updated = _last_updated(meta)
    annotations = meta.get("annotations") or {}
    out: dict[str, Any] = {
        "name": body.get("name", meta.get("name")),
        "id": str(meta.get("uid", "")).replace("-", ""),
        "creation_timestamp": _millis(meta.get("creationTimestamp")),
        "last_updated_timestamp": updated,
        "state": state,
        "endpoint_type": ENDPOINT_TYPE,
        "route_optimized": bool(body.get("route_optimized", False)),
        "endpoint_url": status.get("endpointUrl"),
    }
    if CREATOR_ANNOTATION in annotations:
        out["creator"] = annotations[CREATOR_ANNOTATION]
    if status.get("task"):
        out["task"] = status["task"]
    if permission_level is not None:
        out["permission_level"] = permission_level
    for key in ("tags", "ai_gateway", "description", "rate_limits"):
        if key in body:
            out[key] = body[key]
    if rolling:
        out["pending_config"] = {**config, "start_time": updated}
        if isinstance(observed, int):
            out["config"] = {"config_version": observed, "served_entities": _served_from_status(status)}
    else:
        out["config"] = config
    return out
