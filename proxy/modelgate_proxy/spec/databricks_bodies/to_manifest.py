"""Databricks -> ServingEndpoint manifest: :func:`databricks_to_manifest` (and :func:`rest_body`, the REST body a
document of any accepted shape stands for). See the package docstring for the rules."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .. import API_VERSION, KIND, AiGatewayConfig, ServedEntity, ServingEndpointSpec
from ..spec_model import SpecModel
from .core import (
    ABSENT,
    CONFIG_KEYS,
    CREATED,
    EXTRA_ANNOTATION,
    GATEWAY_RATE_LIMITS,
    LEGACY_RATE_LIMITS,
    LOOSE_SECRET_REF,
    MOVED,
    NAME_ANNOTATION,
    SCOPES_ANNOTATION,
    SPEC_KEYS_AT_TOP,
    SPEC_KEYS_IN_CONFIG,
    ConversionError,
    ConversionResult,
    RequiredSecret,
    Shape,
    is_secret_field,
    join,
    kubernetes_name,
    map_scopes,
    model_of,
    validate_manifest,
)

CUSTOM_MODEL_FIELDS = frozenset({
    "entity_name", "entity_version", "workload_size", "workload_type", "scale_to_zero_enabled",
    "min_provisioned_throughput", "max_provisioned_throughput", "min_provisioned_concurrency",
    "max_provisioned_concurrency", "provisioned_model_units", "environment_vars", "instance_profile_arn",
    "burst_scaling_enabled",
})
"""A served entity's fields for custom (Unity Catalog) models, which Databricks refuses beside ``external_model``."""


@dataclass
class _FromDatabricks:
    """One walk over a Databricks body: camelCases what the models know, sets the rest aside."""

    extras: dict[str, Any] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)
    legacy: list[str] = field(default_factory=list)
    refs: list[tuple[dict[str, Any], str, re.Match[str]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def obj(self, value: Any, model: type[SpecModel], path: str) -> Any:
        if not isinstance(value, dict):
            return value  # validation reports the wrong type
        if model is ServedEntity and value.get("external_model") is not None:
            mixed = [k for k in value if k in CUSTOM_MODEL_FIELDS and value[k] is not None]
            if mixed:  # Databricks refuses the body: a served entity is an external model or a custom model
                raise ConversionError(
                    f"{path}: external_model cannot be combined with {', '.join(mixed)} (custom-model fields: "
                    "Databricks rejects a served entity with both; an external model has no compute to size)"
                )
        out: dict[str, Any] = {}
        for key, item in value.items():
            here = join(path, key)
            info = model.model_fields.get(key)
            if info is None or item is None:
                self.extras[here] = item
                continue
            alias = info.alias or key
            out[alias] = self.value(item, info.annotation, here)
            if is_secret_field(model, key) and isinstance(item, str) and (m := LOOSE_SECRET_REF.match(item)):
                self.refs.append((out, alias, m))
            elif key.endswith("_plaintext"):
                self.warnings.append(f"{here} holds a credential inline; prefer a Secret reference")
            elif key == "bedrock_provider" and isinstance(item, str) and item != item.lower():
                self.extras[here] = item  # Databricks accepts any case; the original spelling comes back
                out[alias] = item.lower()
                self.warnings.append(f"{here}: {item!r} read as {item.lower()!r} (the manifest's spelling); the "
                                     f"original is kept in the {EXTRA_ANNOTATION} annotation for the way back")
        if model.__name__ == "Route" and "served_entity_name" not in value and "served_model_name" in value:
            out = {"servedEntityName": value["served_model_name"], **out}  # the legacy name of the same field
            self.absent.append(join(path, "served_entity_name"))
            self.legacy.append(join(path, "served_model_name"))
            self.warnings.append(f"{join(path, 'served_model_name')}: the legacy name of served_entity_name; "
                                 "read as servedEntityName (and written back as served_model_name)")  # fmt: skip
        return out

    def value(self, item: Any, annotation: Any, path: str) -> Any:
        model, is_list = model_of(annotation)
        if model is None:
            return item
        if is_list and isinstance(item, list):
            return [self.obj(v, model, join(path, i)) for i, v in enumerate(item)]
        return self.obj(item, model, path)


def _spec_field(name: str) -> tuple[str, Any]:
    info = ServingEndpointSpec.model_fields[name]
    return info.alias or name, info.annotation


def input_shape(document: dict[str, Any]) -> Shape:
    """Which of the accepted shapes a Databricks document has (``body`` unless it is a flat one)."""
    if "config" not in document and "served_entities" in document:
        return "flat" if "name" in document else "config"
    return "body"


def rest_body(document: dict[str, Any], *, name: str | None = None) -> dict[str, Any]:
    """The create-endpoint REST body a document of any accepted shape stands for, as MLflow's
    ``create_endpoint(name=name, config=document)`` sends it: the config keys (:data:`CONFIG_KEYS`) of a flat
    document under ``config``, every other key (``tags``, ``rate_limits``, ``ai_gateway``...) at the top.
    ``name`` is used when the document has none; a different name in the document is an error."""
    if input_shape(document) == "body":
        body = dict(document)
    else:
        config = {k: v for k, v in document.items() if k in CONFIG_KEYS}
        top = {k: v for k, v in document.items() if k not in CONFIG_KEYS and k != "name"}
        body = {**({"name": document["name"]} if "name" in document else {}), "config": config, **top}
    if name is not None:
        if "name" not in body:
            body = {"name": name, **body}
        elif body["name"] != name:
            raise ConversionError(f"name: the input names the endpoint {body['name']!r}, not {name!r}")
    return body


def databricks_to_manifest(
    document: dict[str, Any], *, namespace: str | None = None, name: str | None = None
) -> ConversionResult:
    """A ServingEndpoint manifest for a Databricks create-endpoint document (the REST body of
    ``POST /api/2.0/serving-endpoints``, a bare endpoint config as MLflow's legacy ``create_endpoint(config=...)``
    takes it, or a flat body: see :func:`rest_body`), the Secrets it needs, and warnings. ``name`` is the
    endpoint name when the document has none."""
    if not isinstance(document, dict):
        raise ConversionError("a Databricks create-endpoint body must be a JSON object")
    shape = input_shape(document)
    body = rest_body(document, name=name)
    endpoint_name, config = body.get("name"), body.get("config")
    if not isinstance(endpoint_name, str) or not endpoint_name:
        raise ConversionError("name: the endpoint name is required")
    if not isinstance(config, dict) or "served_entities" not in config:
        raise ConversionError("config.served_entities: required (only served_entities with external_model convert)")
    walk = _FromDatabricks()
    spec: dict[str, Any] = {}
    legacy_limits = _legacy_rate_limits_apply(body)
    for key, value in body.items():
        if key in ("name", "config") or (key == LEGACY_RATE_LIMITS and legacy_limits):
            continue
        if key in SPEC_KEYS_AT_TOP and value is not None:
            alias, annotation = _spec_field(key)
            spec[alias] = walk.value(value, annotation, key)
        else:
            walk.extras[key] = value
    for key, value in config.items():
        if key in SPEC_KEYS_IN_CONFIG and value is not None:
            alias, annotation = _spec_field(key)
            spec[alias] = walk.value(value, annotation, f"config.{key}")
        else:
            walk.extras[f"config.{key}"] = value
    moved: dict[str, str] = {}
    created: list[str] = []
    if legacy_limits:
        if "aiGateway" not in spec:
            spec["aiGateway"] = {}
            created.append("ai_gateway")
        info = AiGatewayConfig.model_fields["rate_limits"]
        spec["aiGateway"][info.alias or "rate_limits"] = walk.value(
            body[LEGACY_RATE_LIMITS], info.annotation, LEGACY_RATE_LIMITS
        )
        moved[LEGACY_RATE_LIMITS] = GATEWAY_RATE_LIMITS
    spec = {k: spec[k] for k in ("servedEntities", "trafficConfig", "aiGateway", "tags", "description") if k in spec}
    secrets = _rename_scopes(walk.refs)
    annotations = _annotations(endpoint_name, walk, secrets, moved, created)
    metadata: dict[str, Any] = {"name": kubernetes_name(endpoint_name, fallback="endpoint")}
    if namespace:
        metadata["namespace"] = namespace
    if annotations:
        metadata["annotations"] = annotations
    manifest = {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}
    validate_manifest(manifest, databricks_paths=True, shape=shape, legacy_rate_limits=legacy_limits)
    legacy = body.get(LEGACY_RATE_LIMITS)
    shadowed = not legacy_limits and isinstance(legacy, list) and bool(legacy)  # ai_gateway.rate_limits is set
    warnings = []
    if shape != "body":
        what = "a bare endpoint config (MLflow's create_endpoint(config=...))" if shape == "config" else "a flat body"
        warnings.append(f"the input is {what}: read as the REST body {{name, config: {{served_entities, ...}}, "
                        "tags, rate_limits, ...}, which converting back writes")  # fmt: skip
    if legacy_limits:
        warnings.append(f"{LEGACY_RATE_LIMITS}: Databricks' legacy endpoint rate limits; enforced as "
                        f"spec.aiGateway.rateLimits (written back as {LEGACY_RATE_LIMITS})")  # fmt: skip
    if shadowed:
        warnings.append(f"{LEGACY_RATE_LIMITS}: legacy rate limits are not enforced because ai_gateway.rate_limits "
                        f"is set; kept in the {EXTRA_ANNOTATION} annotation for the way back")  # fmt: skip
    warnings += walk.warnings
    warnings += [f"{p}: not part of the ServingEndpoint API; kept in the {EXTRA_ANNOTATION} annotation for the way "
                 "back, ignored by modelgate" for p in walk.extras if p not in walk.legacy
                 and not _is_case_only(p, walk.extras[p]) and not (shadowed and p == LEGACY_RATE_LIMITS)]  # fmt: skip
    return ConversionResult(manifest=manifest, secrets=secrets, warnings=warnings, shape=shape)


def _legacy_rate_limits_apply(body: dict[str, Any]) -> bool:
    """Whether the top-level (legacy) ``rate_limits`` become ``aiGateway.rateLimits``: there are some, and
    ``ai_gateway.rate_limits`` is absent."""
    legacy, gateway = body.get(LEGACY_RATE_LIMITS), body.get("ai_gateway")
    if not isinstance(legacy, list) or not legacy:
        return False
    return gateway is None or (isinstance(gateway, dict) and gateway.get("rate_limits") is None)


def _is_case_only(path: str, value: Any) -> bool:
    return path.endswith(".bedrock_provider") and isinstance(value, str)


def _rename_scopes(refs: list[tuple[dict[str, Any], str, re.Match[str]]]) -> list[RequiredSecret]:
    mapping = map_scopes(m.group("scope") for _, _, m in refs)
    keys: dict[str, set[str]] = {}
    for container, alias, m in refs:
        scope = m.group("scope")
        text = m.string
        container[alias] = text[: m.start("scope")] + mapping[scope] + text[m.end("scope") :]
        keys.setdefault(scope, set()).add(m.group("key"))
    return [RequiredSecret(mapping[s], tuple(sorted(keys[s])), s) for s in sorted(keys, key=lambda s: mapping[s])]


def _annotations(
    name: str, walk: _FromDatabricks, secrets: list[RequiredSecret], moved: dict[str, str], created: list[str]
) -> dict[str, str]:
    out: dict[str, str] = {}
    if kubernetes_name(name, fallback="endpoint") != name:
        out[NAME_ANNOTATION] = name
    renamed = {s.name: s.databricks_scope for s in secrets if s.name != s.databricks_scope}
    if renamed:
        out[SCOPES_ANNOTATION] = json.dumps(renamed, sort_keys=True)
    extras = dict(walk.extras)
    if walk.absent:
        extras[ABSENT] = walk.absent
    if moved:
        extras[MOVED] = moved
    if created:
        extras[CREATED] = created
    if extras:
        out[EXTRA_ANNOTATION] = json.dumps(extras, separators=(",", ":"), ensure_ascii=False)
    return out
