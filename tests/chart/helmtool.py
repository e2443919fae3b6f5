"""The real helm binary (built by hack/k8s-tools.sh) driven from tests: render, lint, install."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "modelgate"
KUBE_VERSION = "1.34.0"  # helm's compiled-in default may predate the chart's kubeVersion constraint

Doc = dict[str, Any]


class HelmError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout: {self.stdout}\nstderr: {self.stderr}"


def set_args(values: Mapping[str, Any]) -> list[str]:
    """``--set-json key=<json>`` for each dotted key (exact types, no helm string coercion)."""
    return [a for k, v in values.items() for a in ("--set-json", f"{k}={json.dumps(v)}")]


@dataclass
class Helm:
    binary: Path
    env: Mapping[str, str] | None = None

    def run(self, *args: str, check: bool = True, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.binary), *args]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env)
        if check and res.returncode != 0:
            raise HelmError(res.returncode, cmd, res.stdout, res.stderr)
        return res

    def template_text(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        release: str = "mg",
        namespace: str = "modelgate-system",
        extra: Sequence[str] = (),
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "template", release, str(CHART), "--namespace", namespace, "--kube-version", KUBE_VERSION,
            *set_args(values or {}), *extra, check=check,
        )  # fmt: skip

    def template(self, values: Mapping[str, Any] | None = None, **kwargs: Any) -> list[Doc]:
        return parse_docs(self.template_text(values, **kwargs).stdout)


def parse_docs(text: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(text) if d]


def find(docs: Sequence[Doc], kind: str, name: str | None = None, namespace: str | None = None) -> list[Doc]:
    return [
        d
        for d in docs
        if d["kind"] == kind
        and (name is None or d["metadata"]["name"] == name)
        and (namespace is None or d["metadata"].get("namespace") == namespace)
    ]


def one(docs: Sequence[Doc], kind: str, name: str | None = None, namespace: str | None = None) -> Doc:
    found = find(docs, kind, name, namespace)
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[d['metadata'].get('name') for d in found]}"
    return found[0]


def container(deployment: Doc) -> Doc:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])
