"""Each tests/spec/invalid/*.yaml is rejected by the real API server (CEL rules and schema of the generated CRD)
with a message that contains its ``# error:`` text and names its ``# field:``, and by the pydantic models, so
the two sets of rules agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from modelgate_dev.devcluster import DevCluster
from modelgate_proxy import spec

from .corpus import INVALID, error_paths, load_invalid
from .test_rules import all_rules

RULE_MESSAGES = {rule.message for _, rule in all_rules()}


def test_there_are_at_least_40_invalid_manifests() -> None:
    assert len(INVALID) >= 40


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_rejected_by_the_api_server(path: Path, k8s: DevCluster, dry_run_namespace: str) -> None:
    case = load_invalid(path)
    res = k8s.kubectl("apply", "--dry-run=server", "-n", dry_run_namespace, "-f", "-", input=case.text, check=False)
    assert res.returncode != 0, f"the API server accepted {path.name}:\n{res.stdout}"
    assert case.error in res.stderr
    assert case.field in res.stderr, f"the message does not name {case.field}"


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_rejected_by_the_models_too(path: Path) -> None:
    case = load_invalid(path)
    with pytest.raises(ValidationError) as info:
        spec.ServingEndpoint.model_validate(case.manifest)
    paths = error_paths(info.value)
    # A duplicate in a list-map is reported by the API server on the item, by the models on the list.
    assert any(case.field == p or case.field.startswith(f"{p}[") for p in paths), paths
    expected_rules = [m for m in RULE_MESSAGES if case.error in m]
    if expected_rules:  # a cross-field rule: the same words in both places
        assert case.error in str(info.value)
