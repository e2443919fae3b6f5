"""What both directions share: the annotations that keep what a manifest does not model, the result types, the
one name rule (Databricks names -> Kubernetes names), walking the spec models, and validation that names fields
in Databricks' terms."""

from __future__ import annotations

import hashlib
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from .. import KIND, ServingEndpoint
from ..spec_model import SpecModel

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
ABSENT = "$absent"
MOVED = "$moved"
CREATED = "$created"
LEGACY_RATE_LIMITS = "rate_limits"
GATEWAY_RATE_LIMITS = "ai_gateway.rate_limits"
LOOSE_SECRET_REF = re.compile(r"^\{\{\s*secrets/(?P<scope>[^/\s{}]+)/(?P<key>[^/\s{}]+)\s*\}\}$")
SPEC_KEYS_AT_TOP = ("ai_gateway", "tags", "description")
SPEC_KEYS_IN_CONFIG = ("served_entities", "traffic_config")
CONFIG_KEYS = ("served_entities", "served_models", "traffic_config", "auto_capture_config")
"""The keys of a flat document (bare config or flat body) that belong in the REST body's ``config``."""

Direction = Literal["k8s", "databricks"]
Shape = Literal["body", "config", "flat"]
"""``body``: the REST body; ``config``: a bare endpoint config (MLflow's ``config=``); ``flat``: ``name`` beside
``served_entities``."""


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


def to_snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def model_of(annotation: Any) -> tuple[type[SpecModel] | None, bool]:
    """(the SpecModel inside a field's annotation, whether it is a list of them)."""
    if isinstance(annotation, type) and issubclass(annotation, SpecModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    if origin is list:
        inner, _ = model_of(typing.get_args(annotation)[0])
        return inner, inner is not None
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = model_of(arg)
            if found[0] is not None:
                return found
    return None, False


def is_secret_field(model: type[BaseModel], name: str) -> bool:
    return f"{name}_plaintext" in model.model_fields


def is_extension(model: type[BaseModel], name: str) -> bool:
    return "modelgate extension" in (model.model_fields[name].description or "")


def join(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key


def path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out = join(out, part)
    return out


def _databrickspath(k8s_path: str, *, shape: Shape = "body", legacy_rate_limits: bool = False) -> str:
    """The path in the input document of a manifest path."""
    path = k8s_path
    if legacy_rate_limits:
        path = re.sub(r"^spec\.aiGateway\.rateLimits", "rateLimits", path)
    path = re.sub(r"^spec\.(servedEntities|trafficConfig)", r"config.\1" if shape == "body" else r"\1", path)
    path = re.sub(r"^spec\.", "", path).replace("metadata.name", "name")
    return re.sub(r"[A-Za-z0-9]+", lambda m: to_snake(m.group(0)), path)


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
            where = path(p for p in err["loc"] if isinstance(p, int) or not p.startswith(("function-", "json-")))
            if databricks_paths:
                source = _databrickspath(where, shape=shape, legacy_rate_limits=legacy_rate_limits)
                where = f"{where} (Databricks: {source})"
            problems.append(f"  {where}: {err['msg']}")
        raise ConversionError("the ServingEndpoint is invalid:\n" + "\n".join(problems)) from None


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
