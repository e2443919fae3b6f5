"""API conventions of the generated CRD (issue 11, point 7): what `kubectl get`/`explain` show, and that no
rejection message repeats a value or a raw regular expression."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from modelgate_dev.devcluster import DevCluster
from modelgate_operator import crd
from modelgate_proxy import spec
from modelgate_proxy.spec.secrets import SECRET_REF_SYNTAX

REGEX_BITS = ("^(", "^[", ")$", "]$", ")?$", "*$", "regex")


def _schema() -> dict[str, Any]:
    built = crd.build_crd()
    schema: dict[str, Any] = built["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for key, sub in (node.get("properties") or {}).items():
            out.extend(_walk(sub, f"{path}.{key}"))
        if isinstance(node.get("items"), dict):
            out.extend(_walk(node["items"], f"{path}[]"))
        if isinstance(node.get("additionalProperties"), dict):
            out.extend(_walk(node["additionalProperties"], f"{path}{{}}"))
    return out


def test_not_in_category_all_and_the_reason_is_shown_before_the_long_url() -> None:
    built = crd.build_crd()
    assert "all" not in built["spec"]["names"]["categories"]  # `kubectl get all` lists workloads, not endpoints
    columns = {c["name"]: c for c in built["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert "priority" not in columns["Reason"]
    assert columns["URL"]["priority"] == 1  # ~100 characters: only with -o wide


def test_last_transition_time_is_a_date_time() -> None:
    condition = _schema()["properties"]["status"]["properties"]["conditions"]["items"]
    assert condition["properties"]["lastTransitionTime"]["format"] == "date-time"


def test_every_secret_reference_field_documents_the_syntax_and_is_checked_by_a_rule() -> None:
    refs = [(p, n) for p, n in _walk(_schema()) if "SecretReference" not in p and n.get("maxLength") == 522]
    assert len(refs) >= 12
    for path, node in refs:
        assert SECRET_REF_SYNTAX in node["description"], path
        assert "pattern" not in node, path  # a pattern's message would repeat the (pasted) value
        assert any("must be a secret reference" in r["message"] for r in node["x-kubernetes-validations"]), path


def test_no_pattern_left_whose_message_would_be_a_raw_regex() -> None:
    left = [p or "." for p, n in _walk(_schema()) if "pattern" in n]  # metadata.name and quantities included
    assert left == []
    assert len(_walk(_schema())) > 100  # (the walk does reach the whole schema)


def _endpoint(name: str, resources: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "servedEntities": [{"externalModel": {"name": "gpt-4o", "provider": "openai", "task": "llm/v1/chat",
                                              "openaiConfig": {"openaiApiKey": "{{secrets/openai/api-key}}"}}}],
    }  # fmt: skip
    if resources is not None:
        body["proxy"] = {"resources": resources}
    return {"apiVersion": spec.API_VERSION, "kind": spec.KIND, "metadata": {"name": name}, "spec": body}


def _dry_run(k8s: DevCluster, namespace: str, manifest: dict[str, Any]) -> tuple[int, str]:
    res = k8s.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False)
    return res.returncode, res.stdout + res.stderr


def _models_accept(manifest: dict[str, Any]) -> bool:
    try:
        spec.ServingEndpoint.model_validate(manifest)
    except ValidationError:
        return False
    return True


def test_a_bad_endpoint_name_is_rejected_in_words(k8s: DevCluster, dry_run_namespace: str) -> None:
    """A DNS subdomain that is no DNS label (a dot) passes the API server's own name check; the CRD's rule says
    what is wanted, without the value or a regular expression."""
    code, out = _dry_run(k8s, dry_run_namespace, _endpoint("my.sentinelname"))
    assert code != 0
    assert "metadata.name: Invalid value" in out
    assert "must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit" in out
    body = out.split(" is invalid:", 1)[1]  # kubectl's first words name the object ("my.sentinelname" is invalid)
    assert "sentinelname" not in body
    assert [b for b in REGEX_BITS if b in out] == []
    assert not _models_accept(_endpoint("my.sentinelname"))
    code, out = _dry_run(k8s, dry_run_namespace, _endpoint("x" * 64))
    assert code != 0
    assert "Too long" in out
    assert "x" * 64 not in out.split(" is invalid:", 1)[1]
    assert not _models_accept(_endpoint("x" * 64))
    code, out = _dry_run(k8s, dry_run_namespace, _endpoint("x" * 63))
    assert code == 0, out
    assert _models_accept(_endpoint("x" * 63))


def test_a_bad_quantity_is_rejected_in_words(k8s: DevCluster, dry_run_namespace: str) -> None:
    code, out = _dry_run(k8s, dry_run_namespace, _endpoint("q", {"requests": {"cpu": "lots-SENTINEL"},
                                                               "limits": {"memory": "1Gigabyte"}}))  # fmt: skip
    assert code != 0
    assert "spec.proxy.resources.requests[cpu]: Invalid value" in out
    assert "spec.proxy.resources.limits[memory]: Invalid value" in out
    assert out.count("must be a Kubernetes quantity such as 500m, 1, 1.5 or 256Mi") == 2
    assert "SENTINEL" not in out
    assert "Gigabyte" not in out
    assert [b for b in REGEX_BITS if b in out] == []


QUANTITIES = [1, 0, -1, "1", "500m", "1.5", "0.5Gi", "256Mi", "1e3", "1E-3", "+2k", "-1", ".5", "1.", "12345678901234567890",
              "", "abc", "1.5 Gi", "1GB", "1Kb", "0x10", "1e", "--1", "1.2.3", " 1", "1m ", "q" * 65, "1" * 65]  # fmt: skip


@pytest.mark.parametrize("quantity", QUANTITIES, ids=lambda q: repr(q)[:16])
def test_the_models_and_the_crd_agree_on_quantities(quantity: Any, k8s: DevCluster, dry_run_namespace: str) -> None:
    manifest = _endpoint("quantity", {"limits": {"memory": quantity}})
    code, out = _dry_run(k8s, dry_run_namespace, manifest)
    assert (code == 0) == _models_accept(manifest), out
