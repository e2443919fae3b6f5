"""What `helm template` renders for the proxies' authentication: the ClusterRoles, the one reviews binding the
operator keeps (and its narrow right to), the operator's auth defaults, and the optional NetworkPolicy."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from modelgate_operator import render, render_gateway

from .helmtool import REPO_ROOT, Doc, Helm, container, find, one

NS = "modelgate-system"
REVIEWS = f"mg-modelgate-{NS}-proxy-reviews"
FILES = REPO_ROOT / "charts" / "modelgate" / "files"


def _args(docs: list[Doc]) -> list[str]:
    return list(container(one(docs, "Deployment"))["args"])


def _file(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((FILES / name).read_text()))


@pytest.mark.parametrize("scope", ["namespaced", "cluster"])
def test_cluster_roles_and_the_reviews_binding_are_rendered_in_either_scope(helm: Helm, scope: str) -> None:
    docs = helm.template({"watch.scope": scope})
    query = one(docs, "ClusterRole", "modelgate-query")
    assert query["rules"] == _file("modelgate-query-clusterrole.yaml")["rules"]
    for level in ("view", "manage"):  # the CAN_VIEW / CAN_MANAGE analogues (docs/management-api.md)
        assert one(docs, "ClusterRole", f"modelgate-{level}")["rules"] == _file(f"modelgate-{level}-clusterrole.yaml")["rules"]
    reviews = one(docs, "ClusterRole", REVIEWS)
    assert reviews["rules"] == _file("modelgate-proxy-reviews-clusterrole.yaml")["rules"]
    binding = one(docs, "ClusterRoleBinding", REVIEWS)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": REVIEWS}
    assert "subjects" not in binding  # the operator keeps them; helm upgrade leaves them alone
    operator_role = one(docs, "ClusterRole", f"{REVIEWS}-binding")
    assert operator_role["rules"] == [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterrolebindings"], "resourceNames": [REVIEWS],
         "verbs": ["get", "update", "patch"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "resourceNames": [REVIEWS],
         "verbs": ["bind"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
         "resourceNames": [f"mg-modelgate-{NS}-gateway"], "verbs": ["bind"]},  # the workspace gateways' role
    ]  # fmt: skip
    operator_binding = one(docs, "ClusterRoleBinding", f"{REVIEWS}-binding")
    assert operator_binding["subjects"] == [{"kind": "ServiceAccount", "name": "mg-modelgate", "namespace": NS}]
    assert f"--proxy-reviews-binding={REVIEWS}" in _args(docs)


def test_the_reviews_binding_and_query_role_can_be_left_out(helm: Helm) -> None:
    docs = helm.template({"proxy.authentication.reviewsBinding": False, "proxy.authentication.queryClusterRole": False})
    assert [d["metadata"]["name"] for d in find(docs, "ClusterRole")] == [f"mg-modelgate-{NS}-gateway"]
    assert not find(docs, "ClusterRoleBinding")
    assert "--proxy-reviews-binding=" in _args(docs)
    assert not find(helm.template({"rbac.create": False}), "ClusterRoleBinding")


def test_auth_defaults_become_operator_flags(helm: Helm) -> None:
    oidc = {"issuer": "https://login.example.com", "audience": "modelgate", "usernameClaim": "email"}
    docs = helm.template({"proxy.authentication.mode": "trusted-header", "proxy.authentication.audience": "corp/mg",
                          "proxy.authentication.apiKeys": False, "proxy.authentication.oidc": oidc,
                          "proxy.authentication.trustedHeader.userHeader": "X-Forwarded-Email"})  # fmt: skip
    args = _args(docs)
    assert {"--auth-mode=trusted-header", "--auth-audience=corp/mg", "--auth-api-keys=false",
            "--auth-user-header=X-Forwarded-Email"} <= set(args)  # fmt: skip
    (flag,) = [a for a in args if a.startswith("--auth-oidc=")]
    assert json.loads(flag.removeprefix("--auth-oidc=")) == oidc
    assert not [a for a in args if a.startswith("--auth-groups-header")]


@pytest.mark.parametrize("bad", [{"proxy.authentication.mode": "open"}, {"proxy.authentication.audience": ""},
                                 {"proxy.authentication.oidc": {"issuer": "http://login.example.com", "audience": "a"}},
                                 {"proxy.authentication.oidc": {"issuer": "https://login.example.com"}},
                                 {"proxy.authentication.extra": 1}])
def test_schema_refuses_bad_auth_values(helm: Helm, bad: dict[str, Any]) -> None:
    res = helm.run("template", "mg", str(REPO_ROOT / "charts" / "modelgate"), "-n", NS,
                   *[a for k, v in bad.items() for a in ("--set-json", f"{k}={json.dumps(v)}")], check=False)  # fmt: skip
    assert res.returncode != 0, bad


def test_network_policy_admits_only_the_listed_peers_to_the_proxy_port(helm: Helm) -> None:
    assert not find(helm.template(), "NetworkPolicy")
    peers = [{"namespaceSelector": {"matchLabels": {"team": "a"}}}, {"podSelector": {"matchLabels": {"app": "x"}}}]
    docs = helm.template({"proxy.networkPolicy.enabled": True, "proxy.networkPolicy.from": peers,
                          "watch.namespaces": ["team-a", "team-b"]})  # fmt: skip
    policies = find(docs, "NetworkPolicy")
    by_name = {(p["metadata"]["name"], p["metadata"]["namespace"]): p["spec"] for p in policies}
    # The proxies' pods and the workspace gateway's pods (which serve the same endpoints) both get a policy.
    assert sorted(by_name) == [(name, ns) for name in ("modelgate-gateway", "modelgate-proxy")
                               for ns in ("team-a", "team-b")]  # fmt: skip
    rendered_labels = {"modelgate-gateway": render_gateway.labels(), "modelgate-proxy": None}
    for (name, _), spec in by_name.items():
        selector = spec["podSelector"]["matchLabels"]
        assert selector["app.kubernetes.io/name"] == name
        assert selector["app.kubernetes.io/managed-by"] == render.MANAGED_BY
        pod_labels = rendered_labels[name]
        if pod_labels is not None:  # the selector matches the labels the operator puts on the gateway's pods
            assert selector.items() <= pod_labels.items()
        assert spec["policyTypes"] == ["Ingress"]
        assert spec["ingress"] == [{"from": peers, "ports": [{"port": 8080, "protocol": "TCP"}]}]
    closed = find(helm.template({"proxy.networkPolicy.enabled": True}), "NetworkPolicy")
    assert len(closed) == 2
    assert all(p["spec"]["ingress"] == [] for p in closed)  # nothing listed: nothing admitted
    no_gateway = find(helm.template({"proxy.networkPolicy.enabled": True, "gateway.enabled": False}), "NetworkPolicy")
    assert [p["metadata"]["name"] for p in no_gateway] == ["modelgate-proxy"]
    res = helm.run("template", "mg", str(REPO_ROOT / "charts" / "modelgate"), "-n", NS, "--set", "watch.scope=cluster",
                   "--set", "proxy.networkPolicy.enabled=true", check=False)  # fmt: skip
    assert res.returncode != 0
    assert "proxy.networkPolicy.namespaces" in res.stderr
