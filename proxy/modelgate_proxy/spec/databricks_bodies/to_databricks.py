"""ServingEndpoint manifest -> Databricks create-endpoint body: :func:`manifest_to_databricks` and
:func:`convert_manifest` (with warnings). The annotations written by :mod:`.to_manifest` put back everything the
manifest did not model, so databricks -> manifest -> databricks gives the (REST) body back unchanged."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..spec_model import SpecModel
from .core import (
    ABSENT,
    CREATED,
    EXTRA_ANNOTATION,
    LOOSE_SECRET_REF,
    MOVED,
    NAME_ANNOTATION,
    OUR_ANNOTATIONS,
    SCOPES_ANNOTATION,
    SPEC_KEYS_AT_TOP,
    SPEC_KEYS_IN_CONFIG,
    ConversionError,
    DatabricksConversion,
    is_extension,
    is_secret_field,
    join,
    validate_manifest,
)


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
    body["config"] = {k: spec[k] for k in SPEC_KEYS_IN_CONFIG if k in spec}
    body.update({k: spec[k] for k in SPEC_KEYS_AT_TOP if k in spec})
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
            here = join(path, type(model).model_fields[name].alias or name)
            if is_extension(type(model), name):
                self.warnings.append(f"{here}: a modelgate extension Databricks does not know; kept as {name}")
            out[name] = self.value(value, here)
            if is_secret_field(type(model), name) and (m := LOOSE_SECRET_REF.match(value)):
                scope = self.scopes.get(m.group("scope"), m.group("scope"))
                out[name] = value[: m.start("scope")] + scope + value[m.end("scope") :]
        return out

    def value(self, value: Any, path: str) -> Any:
        if isinstance(value, SpecModel):
            return self.dump(value, path)
        if isinstance(value, list):
            return [self.value(v, join(path, i)) for i, v in enumerate(value)]
        if isinstance(value, dict):  # resource maps
            return {k: self.value(v, join(path, k)) for k, v in value.items()}
        return value


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _segments(path: str) -> list[str | int]:
    return [int(index) if index else key for key, index in _SEGMENT.findall(path)]


def _move_home(body: dict[str, Any], extras: dict[str, Any]) -> None:
    """Move what the converter moved (legacy ``rate_limits``) back to its original path; drop an object the move
    created when it is left empty."""
    moved, created = extras.get(MOVED, {}), extras.get(CREATED, [])
    if not isinstance(moved, dict) or not all(isinstance(v, str) for v in moved.values()):
        raise ConversionError(f'metadata.annotations[{EXTRA_ANNOTATION}]: "{MOVED}" must map paths to paths')
    if not isinstance(created, list) or not all(isinstance(p, str) for p in created):
        raise ConversionError(f'metadata.annotations[{EXTRA_ANNOTATION}]: "{CREATED}" must be a list of paths')
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
    for path in extras.get(ABSENT, []):
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
