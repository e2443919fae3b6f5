"""Databricks bodies <-> ServingEndpoint objects for the management API (pure; no HTTP here).

- :func:`prepare` converts a create body with the same conversion ``modelgate convert`` uses
  (:mod:`modelgate_proxy.spec.databricks_bodies`) and moves every ``*_plaintext`` credential out of the manifest
  into the data of the endpoint's own Secret (:func:`plaintext_secret_name`), leaving a ``{{secrets/...}}``
  reference to it in the non-plaintext twin field;
- :func:`databricks_body` is the way back (the REST body an object stands for, with the original Databricks
  secret scope names the converter keeps in annotations), which updates edit and :mod:`.views` shows.

A :class:`ConversionError` names the field (Databricks' path); it becomes ``INVALID_PARAMETER_VALUE``.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from ...errors import BadRequest
from ...spec import API_VERSION, KIND
from ...spec.databricks_bodies import (
    OUR_ANNOTATIONS,
    ConversionError,
    RequiredSecret,
    convert_manifest,
    databricks_to_manifest,
    validate_manifest,
)

_PLAINTEXT = "Plaintext"
_KEY_CHARS = re.compile(r"[^-._a-zA-Z0-9]")
PLAINTEXT_SECRET_PREFIX = "modelgate-plaintext-"


def plaintext_secret_name(endpoint: str, suffix: str) -> str:
    """A Secret, owned by the endpoint, that holds the credentials one create or update body gave inline. Each
    write makes a new one (the gateway may create Secrets, never change or read them, so it cannot be made to
    overwrite a Secret it does not own); earlier ones stay referenced until the endpoint is deleted."""
    return f"{PLAINTEXT_SECRET_PREFIX}{endpoint}-{suffix}"


_REFERENCE = re.compile(r"\{\{\s*secrets/([^/\s{}]+)/")


def referenced_secrets(obj: dict[str, Any]) -> set[str]:
    """The Secret names a stored object's spec references."""
    return set(_REFERENCE.findall(json.dumps(obj.get("spec") or {})))


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a create or update writes: the manifest (no credential in it), the plaintext credentials for the
    endpoint's own Secret (data key -> value), and the Secrets the references name (which the caller must be
    allowed to read)."""

    manifest: dict[str, Any]
    plaintext: dict[str, str] = field(default_factory=dict)
    references: list[RequiredSecret] = field(default_factory=list)
    secret: str = ""
    """The name of the Secret for ``plaintext`` (none is written when there is no plaintext)."""


def invalid(err: ConversionError) -> BadRequest:
    return BadRequest(str(err))


def prepare(body: Any, namespace: str) -> Prepared:
    """A Databricks create body -> :class:`Prepared`; :class:`BadRequest` (naming the field) when it cannot be."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object (the create-serving-endpoint body)")
    try:
        result = databricks_to_manifest(body, namespace=namespace)
    except ConversionError as err:
        raise invalid(err) from None
    manifest = result.manifest
    secret = plaintext_secret_name(manifest["metadata"]["name"], secrets.token_hex(3))
    plaintext: dict[str, str] = {}
    _move_plaintext(manifest["spec"], "spec", secret, plaintext)
    if plaintext:
        try:
            validate_manifest(manifest, databricks_paths=True)
        except ConversionError as err:
            raise invalid(err) from None
    references = [s for s in result.secrets if s.name != secret]
    return Prepared(manifest=manifest, plaintext=plaintext, references=references, secret=secret)


def _move_plaintext(value: Any, path: str, secret: str, out: dict[str, str]) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _move_plaintext(item, f"{path}.{i}", secret, out)
        return
    if not isinstance(value, dict):
        return
    for key in list(value):
        item = value[key]
        if key.endswith(_PLAINTEXT) and len(key) > len(_PLAINTEXT) and isinstance(item, str):
            twin = key[: -len(_PLAINTEXT)]
            if value.get(twin) is not None:
                raise BadRequest(f"{path}.{key}: set either {twin} or {key}, not both", param=key)
            data_key = _KEY_CHARS.sub("-", f"{path}.{twin}")[:253]
            out[data_key] = item
            del value[key]
            value[twin] = "{{secrets/" + secret + "/" + data_key + "}}"
        else:
            _move_plaintext(item, f"{path}.{key}", secret, out)


def manifest_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The parts of a stored object the converter reads (no server-set metadata, no status)."""
    meta = obj.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k in OUR_ANNOTATIONS}
    metadata: dict[str, Any] = {"name": meta.get("name")}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": obj.get("spec") or {}}


def databricks_body(obj: dict[str, Any]) -> dict[str, Any]:
    """The Databricks REST body a stored ServingEndpoint stands for (original names and scopes restored)."""
    try:
        return convert_manifest(manifest_of(obj)).body
    except ConversionError as err:  # an object kubectl wrote that the converter cannot read back
        raise BadRequest(f"the stored ServingEndpoint cannot be shown in Databricks' shape: {err}") from None


def merged(obj: dict[str, Any], prepared: Prepared) -> dict[str, Any]:
    """``obj`` (as stored, with its resourceVersion) with the spec and converter annotations of ``prepared``:
    every other label and annotation kept."""
    meta = dict(obj["metadata"])
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in OUR_ANNOTATIONS}
    annotations.update(prepared.manifest["metadata"].get("annotations") or {})
    meta["annotations"] = annotations
    return {**obj, "metadata": meta, "spec": prepared.manifest["spec"]}
