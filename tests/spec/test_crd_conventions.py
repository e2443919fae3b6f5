"""API conventions of the generated CRD (issue 11, point 7): what `kubectl get`/`explain` show, and that no
rejection message repeats a value or a raw regular expression."""

from __future__ import annotations

from typing import Any

from modelgate_operator import crd
from modelgate_proxy.spec.secrets import SECRET_REF_SYNTAX


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


def test_no_string_pattern_left_whose_message_would_be_a_raw_regex() -> None:
    left = [p for p, n in _walk(_schema()["properties"]["spec"]) if "pattern" in n and n.get("type") == "string" and "maxLength" in n]
    assert left == []
