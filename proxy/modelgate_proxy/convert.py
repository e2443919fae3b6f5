"""Convert a Databricks create-serving-endpoint body to a ServingEndpoint manifest, and back.

    modelgate convert databricks.json > endpoint.yaml      # Databricks body (JSON or YAML) -> manifest
    modelgate convert endpoint.yaml > databricks.json      # manifest -> Databricks body
    modelgate convert --to k8s -n team-a - < body.json     # force the direction, set the namespace
    modelgate convert --name chat config.json              # a document without a name

Input shapes. The REST body ``{name, config: {served_entities, traffic_config, ...}, ai_gateway, tags, ...}``
(``POST /api/2.0/serving-endpoints``); a bare endpoint config ``{served_entities, traffic_config?,
auto_capture_config?, tags?, rate_limits?}`` (the ``config=`` of MLflow's legacy
``get_deploy_client("databricks").create_endpoint(name=..., config=...)``); or a flat body, ``name`` beside
``served_entities``. In the last two, ``served_entities``, ``served_models``, ``traffic_config`` and
``auto_capture_config`` are the config and every other key is read at the top of the REST body, as MLflow sends
``tags`` and ``rate_limits`` (:func:`rest_body`). Without a ``name`` the endpoint takes ``--name``, else the file
name's stem mapped by the name rule below (said on stderr). Converting back always writes the REST body.

Field names are the same words: Databricks' snake_case becomes camelCase (``openai_api_key`` ->
``openaiApiKey``); ``config.served_entities`` / ``config.traffic_config`` become ``spec.servedEntities`` /
``spec.trafficConfig``; ``ai_gateway``, ``tags`` and ``description`` move under ``spec``; ``name`` becomes
``metadata.name``.

Names. A Databricks endpoint name or secret scope may hold characters a Kubernetes name cannot. One rule maps
both (:func:`kubernetes_name`): lowercase; every character outside ``[a-z0-9-]`` becomes ``-``; runs of ``-``
collapse; leading and trailing ``-`` go; the result is cut to the length limit. A ``-<6 hex>`` hash of the
original is appended when the result is empty, was cut, or equals the mapping of another scope of the same
endpoint while differing from its own original. Secret keys need no mapping (both systems allow
``[A-Za-z0-9._-]``).

Nothing is lost. Originals that changed are kept in annotations, and everything the ServingEndpoint does not
model (``route_optimized``, ``budget_policy_id``, ``email_notifications``, ``config.auto_capture_config``,
custom-model fields, a ``bedrock_provider`` spelt in capitals, explicit ``null`` s...) is kept in
:data:`EXTRA_ANNOTATION` as ``{"<databricks path>": <original value>}``; converting back restores all of it, so
databricks -> manifest -> databricks gives the (REST) body back unchanged.

Legacy rate limits. Databricks' top-level ``rate_limits`` (calls per minute per ``user`` or ``endpoint``) become
``spec.aiGateway.rateLimits`` (the same semantics) when ``ai_gateway.rate_limits`` is absent; the annotation
records the move (``"$moved"``) and converting back writes them at the top level again. When both are set,
ai_gateway's are enforced and the legacy ones are only kept in the annotation (with a warning).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import yaml
from pydantic import BaseModel, ValidationError

from .spec import API_VERSION, KIND, AiGatewayConfig, ServingEndpoint, ServingEndpointSpec
from .spec.base import SpecModel

ANNOTATION_PREFIX = "serving.modelgate.io/"
NAME_ANNOTATION = ANNOTATION_PREFIX + "databricks-name"
"""The Databricks endpoint name, when it is not a valid Kubernetes name as is."""
SCOPES_ANNOTATION = ANNOTATION_PREFIX + "databricks-secret-scopes"
"""JSON ``{"<Kubernetes Secret name>": "<Databricks secret scope>"}`` for every scope that was renamed."""
EXTRA_ANNOTATION = ANNOTATION_PREFIX + "databricks-extra"
"""JSON ``{"<databricks path>": <value>}`` of what the ServingEndpoint does not model; ``"$absent"`` lists paths
the converter writes that the original body did not have; ``"$moved"`` is ``{"<original path>": "<path the
converter writes>"}`` for values the way back moves home, and ``"$created"`` lists objects such a move created
(dropped on the way back when the move leaves them empty)."""
OUR_ANNOTATIONS = (NAME_ANNOTATION, SCOPES_ANNOTATION, EXTRA_ANNOTATION)

ENDPOINT_NAME_MAX = 63
SECRET_NAME_MAX = 253
_HASH_LEN = 6
_ABSENT = "$absent"
_MOVED = "$moved"
_CREATED = "$created"
_LEGACY_RATE_LIMITS = "rate_limits"
_GATEWAY_RATE_LIMITS = "ai_gateway.rate_limits"
_LOOSE_SECRET_REF = re.compile(r"^\{\{\s*secrets/(?P<scope>[^/\s{}]+)/(?P<key>[^/\s{}]+)\s*\}\}$")
_SPEC_KEYS_AT_TOP = ("ai_gateway", "tags", "description")
_SPEC_KEYS_IN_CONFIG = ("served_entities", "traffic_config")
_CONFIG_KEYS = ("served_entities", "served_models", "traffic_config", "auto_capture_config")
"""The keys of a flat document (bare config or flat body) that belong in the REST body's ``config``."""

Direction = Literal["k8s", "databricks"]
Shape = Literal["body", "config", "flat"]
"""``body``: the REST body; ``config``: a bare endpoint config (MLflow's ``config=``); ``flat``: ``name`` beside
``served_entities``."""
Json = Any


class ConversionError(ValueError):
    """The input cannot be converted; the message names the offending field."""


@dataclass(frozen=True, slots=True)
class RequiredSecret:
    """A Kubernetes Secret the converted endpoint references, and where its values come from."""

    name: str
    """The Kubernetes Secret name."""
    keys: tuple[str, ...]
    """The data keys the endpoint reads from it."""
    databricks_scope: str
    """The Databricks secret scope that holds the values (the same keys)."""


@dataclass(frozen=True, slots=True)
class ConversionResult:
    """Databricks body -> ServingEndpoint manifest."""

    manifest: dict[str, Any]
    secrets: list[RequiredSecret]
    warnings: list[str] = field(default_factory=list)
    shape: Shape = "body"
    """The shape of the input document."""


@dataclass(frozen=True, slots=True)
class DatabricksConversion:
    """ServingEndpoint manifest -> Databricks body."""

    body: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- names


def _short_hash(original: str) -> str:
    return hashlib.sha256(original.encode()).hexdigest()[:_HASH_LEN]


def _sanitize(name: str) -> str:
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", name.lower())).strip("-")


def _with_hash(base: str, original: str, max_length: int, fallback: str) -> str:
    stem = base[: max_length - _HASH_LEN - 1].rstrip("-") or fallback
    return f"{stem}-{_short_hash(original)}"


def kubernetes_name(original: str, *, max_length: int = ENDPOINT_NAME_MAX, fallback: str = "x") -> str:
    """The Kubernetes name for a Databricks name, by the module's one rule (without the collision step)."""
    base = _sanitize(original)
    if not base or len(base) > max_length:
        return _with_hash(base, original, max_length, fallback)
    return base


def map_scopes(scopes: Iterable[str]) -> dict[str, str]:
    """Databricks scope -> Kubernetes Secret name, for all scopes of one endpoint (collisions get a hash)."""
    originals = sorted(set(scopes))
    bases = {s: kubernetes_name(s, max_length=SECRET_NAME_MAX, fallback="scope") for s in originals}
    taken: dict[str, int] = {}
    for base in bases.values():
        taken[base] = taken.get(base, 0) + 1
    return {
        s: _with_hash(b, s, SECRET_NAME_MAX, "scope") if taken[b] > 1 and b != s else b for s, b in bases.items()
    }


# --------------------------------------------------------------------------------------------- model walking


def _to_snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _model_of(annotation: Any) -> tuple[type[SpecModel] | None, bool]:
    """(the SpecModel inside a field's annotation, whether it is a list of them)."""
    if isinstance(annotation, type) and issubclass(annotation, SpecModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    if origin is list:
        inner, _ = _model_of(typing.get_args(annotation)[0])
        return inner, inner is not None
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found[0] is not None:
                return found
    return None, False


def _is_secret_field(model: type[BaseModel], name: str) -> bool:
    return f"{name}_plaintext" in model.model_fields


def _is_extension(model: type[BaseModel], name: str) -> bool:
    return "modelgate extension" in (model.model_fields[name].description or "")


def _join(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key


@dataclass
class _FromDatabricks:
    """One walk over a Databricks body: camelCases what the models know, sets the rest aside."""

    extras: dict[str, Json] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)
    legacy: list[str] = field(default_factory=list)
    refs: list[tuple[dict[str, Any], str, re.Match[str]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def obj(self, value: Json, model: type[SpecModel], path: str) -> Json:
        if not isinstance(value, dict):
            return value  # validation reports the wrong type
        out: dict[str, Any] = {}
        for key, item in value.items():
            here = _join(path, key)
            info = model.model_fields.get(key)
            if info is None or item is None:
                self.extras[here] = item
                continue
            alias = info.alias or key
            out[alias] = self.value(item, info.annotation, here)
            if _is_secret_field(model, key) and isinstance(item, str) and (m := _LOOSE_SECRET_REF.match(item)):
                self.refs.append((out, alias, m))
            elif key.endswith("_plaintext"):
                self.warnings.append(f"{here} holds a credential inline; prefer a Secret reference")
            elif key == "bedrock_provider" and isinstance(item, str) and item != item.lower():
                self.extras[here] = item  # Databricks accepts any case; the original spelling comes back
                out[alias] = item.lower()
        if model.__name__ == "Route" and "served_entity_name" not in value and "served_model_name" in value:
            out = {"servedEntityName": value["served_model_name"], **out}  # the legacy name of the same field
            self.absent.append(_join(path, "served_entity_name"))
            self.legacy.append(_join(path, "served_model_name"))
            self.warnings.append(f"{_join(path, 'served_model_name')}: the legacy name of served_entity_name; "
                                 "read as servedEntityName (and written back as served_model_name)")  # fmt: skip
        return out

    def value(self, item: Json, annotation: Any, path: str) -> Json:
        model, is_list = _model_of(annotation)
        if model is None:
            return item
        if is_list and isinstance(item, list):
            return [self.obj(v, model, _join(path, i)) for i, v in enumerate(item)]
        return self.obj(item, model, path)


def _spec_field(name: str) -> tuple[str, Any]:
    info = ServingEndpointSpec.model_fields[name]
    return info.alias or name, info.annotation


# --------------------------------------------------------------------------------------------- validation


def _path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out = _join(out, part)
    return out


def _databricks_path(k8s_path: str, *, shape: Shape = "body", legacy_rate_limits: bool = False) -> str:
    """The path in the input document of a manifest path."""
    path = k8s_path
    if legacy_rate_limits:
        path = re.sub(r"^spec\.aiGateway\.rateLimits", "rateLimits", path)
    path = re.sub(r"^spec\.(servedEntities|trafficConfig)", r"config.\1" if shape == "body" else r"\1", path)
    path = re.sub(r"^spec\.", "", path).replace("metadata.name", "name")
    return re.sub(r"[A-Za-z0-9]+", lambda m: _to_snake(m.group(0)), path)


def validate_manifest(
    manifest: dict[str, Any], *, databricks_paths: bool = False, shape: Shape = "body", legacy_rate_limits: bool = False
) -> ServingEndpoint:
    """The manifest as a :class:`ServingEndpoint`; :class:`ConversionError` names each invalid field (with
    ``databricks_paths``, also where it was in an input of that ``shape``)."""
    try:
        return ServingEndpoint.model_validate(manifest)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            where = _path(p for p in err["loc"] if isinstance(p, int) or not p.startswith(("function-", "json-")))
            if databricks_paths:
                source = _databricks_path(where, shape=shape, legacy_rate_limits=legacy_rate_limits)
                where = f"{where} (Databricks: {source})"
            problems.append(f"  {where}: {err['msg']}")
        raise ConversionError("the ServingEndpoint is invalid:\n" + "\n".join(problems)) from None


# --------------------------------------------------------------------------------------------- Databricks -> k8s


def input_shape(document: dict[str, Any]) -> Shape:
    """Which of the accepted shapes a Databricks document has (``body`` unless it is a flat one)."""
    if "config" not in document and "served_entities" in document:
        return "flat" if "name" in document else "config"
    return "body"


def rest_body(document: dict[str, Any], *, name: str | None = None) -> dict[str, Any]:
    """The create-endpoint REST body a document of any accepted shape stands for, as MLflow's
    ``create_endpoint(name=name, config=document)`` sends it: the config keys (:data:`_CONFIG_KEYS`) of a flat
    document under ``config``, every other key (``tags``, ``rate_limits``, ``ai_gateway``...) at the top.
    ``name`` is used when the document has none; a different name in the document is an error."""
    if input_shape(document) == "body":
        body = dict(document)
    else:
        config = {k: v for k, v in document.items() if k in _CONFIG_KEYS}
        top = {k: v for k, v in document.items() if k not in _CONFIG_KEYS and k != "name"}
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
        if key in ("name", "config") or (key == _LEGACY_RATE_LIMITS and legacy_limits):
            continue
        if key in _SPEC_KEYS_AT_TOP and value is not None:
            alias, annotation = _spec_field(key)
            spec[alias] = walk.value(value, annotation, key)
        else:
            walk.extras[key] = value
    for key, value in config.items():
        if key in _SPEC_KEYS_IN_CONFIG and value is not None:
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
            body[_LEGACY_RATE_LIMITS], info.annotation, _LEGACY_RATE_LIMITS
        )
        moved[_LEGACY_RATE_LIMITS] = _GATEWAY_RATE_LIMITS
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
    legacy = body.get(_LEGACY_RATE_LIMITS)
    shadowed = not legacy_limits and isinstance(legacy, list) and bool(legacy)  # ai_gateway.rate_limits is set
    warnings = []
    if shape != "body":
        what = "a bare endpoint config (MLflow's create_endpoint(config=...))" if shape == "config" else "a flat body"
        warnings.append(f"the input is {what}: read as the REST body {{name, config: {{served_entities, ...}}, "
                        "tags, rate_limits, ...}, which converting back writes")  # fmt: skip
    if legacy_limits:
        warnings.append(f"{_LEGACY_RATE_LIMITS}: Databricks' legacy endpoint rate limits; enforced as "
                        f"spec.aiGateway.rateLimits (written back as {_LEGACY_RATE_LIMITS})")  # fmt: skip
    if shadowed:
        warnings.append(f"{_LEGACY_RATE_LIMITS}: legacy rate limits are not enforced because ai_gateway.rate_limits "
                        f"is set; kept in the {EXTRA_ANNOTATION} annotation for the way back")  # fmt: skip
    warnings += walk.warnings
    warnings += [f"{p}: not part of the ServingEndpoint API; kept in the {EXTRA_ANNOTATION} annotation for the way "
                 "back, ignored by modelgate" for p in walk.extras if p not in walk.legacy
                 and not _is_case_only(p, walk.extras[p]) and not (shadowed and p == _LEGACY_RATE_LIMITS)]  # fmt: skip
    return ConversionResult(manifest=manifest, secrets=secrets, warnings=warnings, shape=shape)


def _legacy_rate_limits_apply(body: dict[str, Any]) -> bool:
    """Whether the top-level (legacy) ``rate_limits`` become ``aiGateway.rateLimits``: there are some, and
    ``ai_gateway.rate_limits`` is absent."""
    legacy, gateway = body.get(_LEGACY_RATE_LIMITS), body.get("ai_gateway")
    if not isinstance(legacy, list) or not legacy:
        return False
    return gateway is None or (isinstance(gateway, dict) and gateway.get("rate_limits") is None)


def _is_case_only(path: str, value: Json) -> bool:
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
        extras[_ABSENT] = walk.absent
    if moved:
        extras[_MOVED] = moved
    if created:
        extras[_CREATED] = created
    if extras:
        out[EXTRA_ANNOTATION] = json.dumps(extras, separators=(",", ":"), ensure_ascii=False)
    return out


# --------------------------------------------------------------------------------------------- k8s -> Databricks


def manifest_to_databricks(manifest: dict[str, Any]) -> dict[str, Any]:
    """The Databricks create-endpoint body for a ServingEndpoint manifest."""
    return convert_manifest(manifest).body


def convert_manifest(manifest: dict[str, Any]) -> DatabricksConversion:
    """:func:`manifest_to_databricks` with the warnings (what Databricks has no place for)."""
    endpoint = validate_manifest(manifest)
    meta = endpoint.metadata
    annotations = dict(meta.annotations or {})
    scopes = _json_annotation(annotations, SCOPES_ANNOTATION, dict)
    extras = _json_annotation(annotations, EXTRA_ANNOTATION, dict)
    warnings: list[str] = []
    spec = _ToDatabricks(scopes, warnings).dump(endpoint.spec, "spec")
    if "proxy" in spec:
        warnings.append("spec.proxy: Kubernetes-only proxy settings have no Databricks equivalent; dropped")
    dropped = [k for k in ("namespace", "labels") if getattr(meta, k)] + [
        f"annotations[{k}]" for k in annotations if k not in OUR_ANNOTATIONS
    ]
    warnings += [f"metadata.{k}: not part of a Databricks endpoint; dropped" for k in dropped]
    body: dict[str, Any] = {"name": annotations.get(NAME_ANNOTATION, meta.name)}
    body["config"] = {k: spec[k] for k in _SPEC_KEYS_IN_CONFIG if k in spec}
    body.update({k: spec[k] for k in _SPEC_KEYS_AT_TOP if k in spec})
    _move_home(body, extras)
    _restore(body, extras)
    return DatabricksConversion(body=body, warnings=warnings)


def _json_annotation(annotations: dict[str, str], key: str, kind: type[dict[str, Any]]) -> dict[str, Any]:
    raw = annotations.get(key)
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConversionError(f"metadata.annotations[{key}]: not valid JSON ({exc.msg})") from None
    if not isinstance(value, kind):
        raise ConversionError(f"metadata.annotations[{key}]: must be a JSON object")
    return value


@dataclass
class _ToDatabricks:
    """snake_case dump of the validated spec, secret scopes restored, modelgate-only fields reported."""

    scopes: dict[str, str]
    warnings: list[str]

    def dump(self, model: SpecModel, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in type(model).model_fields:
            value = getattr(model, name)
            if value is None or name not in model.model_fields_set:
                continue
            here = _join(path, type(model).model_fields[name].alias or name)
            if _is_extension(type(model), name):
                self.warnings.append(f"{here}: a modelgate extension Databricks does not know; kept as {name}")
            out[name] = self.value(value, here)
            if _is_secret_field(type(model), name) and (m := _LOOSE_SECRET_REF.match(value)):
                scope = self.scopes.get(m.group("scope"), m.group("scope"))
                out[name] = value[: m.start("scope")] + scope + value[m.end("scope") :]
        return out

    def value(self, value: Any, path: str) -> Json:
        if isinstance(value, SpecModel):
            return self.dump(value, path)
        if isinstance(value, list):
            return [self.value(v, _join(path, i)) for i, v in enumerate(value)]
        if isinstance(value, dict):  # resource maps
            return {k: self.value(v, _join(path, k)) for k, v in value.items()}
        return value


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _segments(path: str) -> list[str | int]:
    return [int(index) if index else key for key, index in _SEGMENT.findall(path)]


def _move_home(body: dict[str, Any], extras: dict[str, Any]) -> None:
    """Move what the converter moved (legacy ``rate_limits``) back to its original path; drop an object the move
    created when it is left empty."""
    moved, created = extras.get(_MOVED, {}), extras.get(_CREATED, [])
    if not isinstance(moved, dict) or not all(isinstance(v, str) for v in moved.values()):
        raise ConversionError(f'metadata.annotations[{EXTRA_ANNOTATION}]: "{_MOVED}" must map paths to paths')
    if not isinstance(created, list) or not all(isinstance(p, str) for p in created):
        raise ConversionError(f'metadata.annotations[{EXTRA_ANNOTATION}]: "{_CREATED}" must be a list of paths')
    for original, converted in moved.items():
        value = _pop(body, converted)
        if value is not None:
            parent, key = _parent(body, original)
            parent[key] = value
    for path in created:
        parent, key = _parent(body, path)
        if parent.get(key) == {}:
            del parent[key]


def _pop(body: dict[str, Any], path: str) -> Any:
    """Remove and return the value at ``path``; ``None`` when there is none."""
    node: Any = body
    segments = _segments(path)
    for seg in segments[:-1]:
        if isinstance(seg, int):
            node = node[seg] if isinstance(node, list) and seg < len(node) else None
        else:
            node = node.get(seg) if isinstance(node, dict) else None
    last = segments[-1] if segments else None
    return node.pop(last, None) if isinstance(node, dict) and isinstance(last, str) else None


def _restore(body: dict[str, Any], extras: dict[str, Any]) -> None:
    """Put back what the annotation kept: values at their paths, and remove what the original did not have."""
    for path, value in extras.items():
        if not path.startswith("$"):
            parent, key = _parent(body, path)
            parent[key] = value
    for path in extras.get(_ABSENT, []):
        parent, key = _parent(body, path)
        parent.pop(key, None)


def _parent(body: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The dict that holds the last segment of ``path`` (created on the way where missing), and that key."""
    segments = _segments(path)
    node: Any = body
    for seg in segments[:-1]:
        if isinstance(seg, int):
            if not isinstance(node, list) or seg >= len(node):
                raise ConversionError(f"metadata.annotations[{EXTRA_ANNOTATION}]: {path} no longer fits the spec")
            node = node[seg]
        else:
            if not isinstance(node, dict):
                raise ConversionError(f"metadata.annotations[{EXTRA_ANNOTATION}]: {path} no longer fits the spec")
            node = node.setdefault(seg, {})
    last = segments[-1] if segments else None
    if not isinstance(node, dict) or not isinstance(last, str):
        raise ConversionError(f"metadata.annotations[{EXTRA_ANNOTATION}]: {path} no longer fits the spec")
    return node, last


# --------------------------------------------------------------------------------------------- CLI


def detect_direction(document: Any) -> Direction:
    """``databricks`` for a ServingEndpoint manifest (convert it to Databricks), ``k8s`` for a Databricks body."""
    if isinstance(document, dict) and document.get("kind") == KIND and "apiVersion" in document:
        return "databricks"
    if isinstance(document, dict) and ("config" in document or "served_entities" in document):
        return "k8s"
    raise ConversionError(
        "cannot tell what the input is: expected a ServingEndpoint manifest (apiVersion, kind) or a Databricks "
        "create-endpoint body (name, config) or endpoint config (served_entities); use --to to say which way "
        "to convert"
    )


def secrets_instructions(secrets: list[RequiredSecret], namespace: str | None) -> str:
    """What to tell the user about the Secrets a converted manifest needs (never any value)."""
    if not secrets:
        return ""
    ns = f" -n {namespace}" if namespace else ""
    lines = ["Create these Secrets in the endpoint's namespace first (values from the Databricks secret scopes):"]
    for s in secrets:
        literals = " ".join(f"--from-literal={k}=<{s.databricks_scope}/{k}>" for k in s.keys)
        renamed = f"   # Databricks scope {s.databricks_scope!r}" if s.name != s.databricks_scope else ""
        lines.append(f"  kubectl create secret generic {s.name}{ns} {literals}{renamed}")
    return "\n".join(lines)


def add_convert_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``convert`` on the ``modelgate`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "convert",
        help="convert a Databricks create-endpoint body to a ServingEndpoint manifest, or back",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", help="a JSON or YAML file, or - for stdin")
    parser.add_argument("--to", choices=["k8s", "databricks"], help="the output format (default: the other one)")
    parser.add_argument("-n", "--namespace", help="metadata.namespace of the manifest (Databricks -> k8s)")
    parser.add_argument(
        "--name",
        help="the endpoint name when the Databricks input has none (default: the file name's stem, made a "
        "Kubernetes name)",
    )
    parser.add_argument("-o", "--output", help="write here instead of stdout")
    parser.set_defaults(func=run_convert)
    return parser


def _default_name(document: Any, name: str | None, source: str) -> tuple[str | None, list[str]]:
    """The endpoint name for a document without one (``--name``, else the input file's stem by the name rule),
    and what to say about it."""
    if not isinstance(document, dict) or "name" in document:
        return name, []
    if name is not None:
        return name, [f"name: not in the input; the endpoint is named {name!r} (--name)"]
    if source == "-":
        raise ConversionError("name: the input has no endpoint name; pass --name")
    stem = Path(source).stem
    name = kubernetes_name(stem, fallback="endpoint")
    return name, [f"name: not in the input; the endpoint is named {name!r} after the file {stem!r} (--name to choose)"]


def run_convert(args: argparse.Namespace, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        text = sys.stdin.read() if args.input == "-" else Path(args.input).read_text()
        document = yaml.safe_load(text)
        direction: Direction = args.to or detect_direction(document)
        if direction == "k8s":
            name, name_note = _default_name(document, args.name, args.input)
            result = databricks_to_manifest(document, namespace=args.namespace, name=name)
            rendered = yaml.safe_dump(result.manifest, sort_keys=False, allow_unicode=True, width=120)
            warnings, note = [*name_note, *result.warnings], secrets_instructions(result.secrets, args.namespace)
        else:
            conversion = convert_manifest(document)
            rendered = json.dumps(conversion.body, indent=2, ensure_ascii=False) + "\n"
            warnings, note = conversion.warnings, ""
    except (OSError, yaml.YAMLError, ConversionError) as exc:
        print(f"modelgate convert: {exc}", file=err)
        return 1
    for warning in warnings:
        print(f"warning: {warning}", file=err)
    if note:
        print(note, file=err)
    if args.output:
        Path(args.output).write_text(rendered)
    else:
        out.write(rendered)
    return 0
