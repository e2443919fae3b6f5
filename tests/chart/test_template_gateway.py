"""What `helm template` renders for the workspace gateway (docs/workspace-gateway.md): its ClusterRole (the
rules of charts/modelgate/files/' two gateway roles and operator/config/rbac/), the operator's flags, and values the schema refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from modelgate_operator.gateway_defaults import GatewayIngress

from .helmtool import REPO_ROOT, Doc, Helm, container, find, one

NS = "modelgate-system"
ROLE = f"mg-modelgate-{NS}-gateway"


def _args(docs: list[Doc]) -> list[str]:
    return list(container(one(docs, "Deployment"))["args"])


def _flag(args: list[str], name: str) -> str:
    (value,) = [a.removeprefix(f"{name}=") for a in args if a.startswith(f"{name}=")]
    return value


def test_gateway_is_on_by_default_with_its_cluster_role_and_flags(helm: Helm) -> None:
    docs = helm.template()
    role = one(docs, "ClusterRole", ROLE)
    files = REPO_ROOT / "charts" / "modelgate" / "files"
    shipped = [rule for name in ("modelgate-gateway-clusterrole.yaml", "modelgate-gateway-permissions-clusterrole.yaml")
               for rule in yaml.safe_load((files / name).read_text())["rules"]]  # fmt: skip
    assert role["rules"] == shipped
    assert role["rules"] == yaml.safe_load((REPO_ROOT / "operator/config/rbac/gateway_cluster_role.yaml").read_text())[
        "rules"]
    args = _args(docs)
    assert "--gateway=true" in args
    assert _flag(args, "--gateway-cluster-role") == ROLE
    assert json.loads(_flag(args, "--gateway-resources")) == {"requests": {"cpu": "100m", "memory": "192Mi"},
                                                              "limits": {"memory": "512Mi"}}  # fmt: skip
    ingress = GatewayIngress.model_validate_json(_flag(args, "--gateway-ingress"))  # what the operator parses
    assert not ingress.enabled


def test_ingress_values_reach_the_operator_as_it_parses_them(helm: Helm) -> None:
    values: dict[str, Any] = {"gateway.ingress": {"enabled": True, "className": "nginx", "host": "{namespace}.ai.example.com",
                                                  "tls": {"secretName": "wildcard"}, "annotations": {"a/b": "c"}},
                              "gateway.refuseGitops": True, "gateway.replicas": 2}  # fmt: skip
    args = _args(helm.template(values))
    ingress = GatewayIngress.model_validate_json(_flag(args, "--gateway-ingress"))
    assert (ingress.enabled, ingress.class_name, ingress.host, ingress.tls_secret, ingress.annotations) == (
        True, "nginx", "{namespace}.ai.example.com", "wildcard", {"a/b": "c"})  # fmt: skip
    assert "--gateway-refuse-gitops" in args
    assert "--gateway-replicas=2" in args


def test_gateway_off_renders_no_role_and_no_bind_right(helm: Helm) -> None:
    docs = helm.template({"gateway.enabled": False})
    assert not [d for d in find(docs, "ClusterRole") if d["metadata"]["name"] == ROLE]
    assert ROLE not in json.dumps(docs)
    assert "--gateway=false" in _args(docs)


@pytest.mark.parametrize("bad", [{"gateway.replicas": 0}, {"gateway.ingress.host": "Not A Host"},
                                 {"gateway.ingress.tls": "yes"}, {"gateway.extra": 1}])
def test_schema_refuses_bad_gateway_values(helm: Helm, bad: dict[str, Any]) -> None:
    res = helm.run("template", "mg", str(REPO_ROOT / "charts" / "modelgate"), "-n", NS,
                   *[a for k, v in bad.items() for a in ("--set-json", f"{k}={json.dumps(v)}")], check=False)  # fmt: skip
    assert res.returncode != 0, bad
