"""The manifests the spec tests read: samples/, tests/spec/invalid/ and tests/spec/databricks/."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO_ROOT / "samples").glob("*.yaml"))
INVALID = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))
DATABRICKS = sorted((Path(__file__).parent / "databricks").glob("*.json"))


@dataclass(frozen=True)
class InvalidManifest:
    """One file of tests/spec/invalid: the manifest and what rejecting it must say."""

    path: Path
    text: str
    error: str
    """A substring of the API server's message (``# error:`` header)."""
    field: str
    """The offending field's path, which the message must name (``# field:`` header)."""

    @property
    def manifest(self) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load(self.text)
        return loaded


def load_invalid(path: Path) -> InvalidManifest:
    text = path.read_text()
    headers = dict(re.findall(r"^# (error|field): (.+)$", text, flags=re.MULTILINE))
    assert {"error", "field"} <= headers.keys(), f"{path.name}: needs '# error:' and '# field:' header lines"
    return InvalidManifest(path, text, headers["error"], headers["field"])


def error_paths(exc: ValidationError) -> list[str]:
    """Each error's location as a manifest path (``spec.servedEntities[0].name``), with the field a cross-field
    rule names (its message starts ``<field>: ``) appended, as the API server reports it."""
    out = []
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif not part.startswith(("function-", "json-")):
                path += f".{part}" if path else part
        message = str(err["msg"]).removeprefix("Value error, ")
        named = re.findall(r"(?:^|; )([A-Za-z0-9_.\[\]]+): ", message) if err["type"] == "value_error" else []
        out.extend([f"{path}.{n}" if path else n for n in named] or [path])
    return out
