"""The checked-in CRD is what the models generate, and the API server keeps all of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml
from pydantic import Field

from modelgate_dev import crdgen
from modelgate_dev.devcluster import DevCluster
from modelgate_operator import crd
from modelgate_proxy import spec

CRD_PATH = crdgen.DEFAULT_PATH


def test_checked_in_crd_is_fresh() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "modelgate_dev.crdgen", "--check"], capture_output=True, text=True,
        cwd=CRD_PATH.parents[1],
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert CRD_PATH.read_text() == crd.render()


class _ChangedSpec(spec.ServingEndpointSpec):
    """The spec with one more field, as if someone added it and forgot to regenerate."""

    canary: Annotated[str, Field(max_length=8)] | None = None
    """A field the checked-in CRD does not have."""


def test_check_fails_when_a_model_changes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    current = tmp_path / crd.CRD_FILENAME
    current.write_text(CRD_PATH.read_text())
    assert crdgen.main(["--check", "--out", str(current)]) == 0
    monkeypatch.setattr(spec, "ServingEndpointSpec", _ChangedSpec)
    assert "canary" in crd.render()
    assert crdgen.main(["--check", "--out", str(current)]) == 1
    assert crdgen.main(["--out", str(current)]) == 0  # regenerating fixes it
    assert crdgen.main(["--check", "--out", str(current)]) == 0


def test_check_fails_when_a_rule_message_changes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    current = tmp_path / crd.CRD_FILENAME
    current.write_text(CRD_PATH.read_text())
    rule = spec.TrafficConfig.rules[0]
    edited = type(rule)(rule.cel, rule.message + "!", rule.check, rule.field_path, rule.reason)
    monkeypatch.setattr(spec.TrafficConfig, "rules", (edited, *spec.TrafficConfig.rules[1:]))
    assert crdgen.main(["--check", "--out", str(current)]) == 1


def _diff(ours: Any, theirs: Any, path: str = "") -> list[str]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return [f"{path}/{k}" for k in ours if k not in theirs] + [
            d for k in ours if k in theirs for d in _diff(ours[k], theirs[k], f"{path}/{k}")
        ]
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [d for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) for d in _diff(a, b, f"{path}[{i}]")]
    return [] if ours == theirs else [path]


def test_the_api_server_keeps_every_key_of_the_schema(k8s: DevCluster) -> None:
    """A key the CRD language does not have (e.g. ``const``) is dropped silently; the schema must survive whole."""
    ours = yaml.safe_load(CRD_PATH.read_text())
    stored = json.loads(k8s.kubectl("get", "crd", ours["metadata"]["name"], "-o", "json").stdout)
    schema = "versions", 0, "schema", "openAPIV3Schema"
    mine, theirs = ours["spec"], stored["spec"]
    for key in schema:
        mine, theirs = mine[key], theirs[key]
    assert _diff(mine, theirs) == []
    assert stored["spec"]["names"]["shortNames"] == list(spec.SHORT_NAMES)
