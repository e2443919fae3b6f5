"""Load ServingEndpoint manifests (YAML, several documents per file allowed) into validated models.

The same loader serves standalone mode (``modelgate serve -f endpoint.yaml``) and the container the operator
runs, whose ConfigMap holds the endpoint manifest with every plaintext credential already replaced by a
``{{secrets/<owned-secret>/<key>}}`` reference.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..spec import ServingEndpoint


class ConfigError(Exception):
    """A manifest cannot be used; the message names the file and the field, never a credential value."""


def load_endpoints(paths: Iterable[str | os.PathLike[str]]) -> list[ServingEndpoint]:
    """All ServingEndpoints in ``paths``; endpoint names must be unique across files."""
    endpoints: list[ServingEndpoint] = []
    seen: dict[str, str] = {}
    for path in paths:
        for index, doc in enumerate(_documents(Path(path))):
            where = f"{path} (document {index + 1})"
            endpoint = parse_endpoint(doc, where)
            if endpoint.name in seen:
                raise ConfigError(f"{where}: endpoint {endpoint.name!r} is also defined in {seen[endpoint.name]}")
            seen[endpoint.name] = where
            endpoints.append(endpoint)
    if not endpoints:
        raise ConfigError("no ServingEndpoint found in the given files")
    return endpoints


def parse_endpoint(doc: Any, where: str) -> ServingEndpoint:
    """Validate one manifest document."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a ServingEndpoint mapping, got {type(doc).__name__}")
    try:
        return ServingEndpoint.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(f"{where}: invalid ServingEndpoint:\n{_describe(exc)}") from None


def _documents(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    out: list[Any] = []
    for doc in docs:
        # A `kind: List` (as `kubectl get -o yaml` prints) holds several manifests.
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out.extend(doc["items"])
        else:
            out.append(doc)
    return out


def _describe(exc: ValidationError) -> str:
    """Pydantic's errors without the input values (which may be credentials)."""
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        lines.append(f"  {loc or '<root>'}: {err['msg']}")
    return "\n".join(lines)
