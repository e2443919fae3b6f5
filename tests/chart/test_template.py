"""What `helm template` renders: security context, args, env, RBAC scope switching, CRDs, monitors, peering."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from .helmtool import REPO_ROOT, Doc, Helm, container, find, one

NS = "modelgate-system"


def _args(docs: list[Doc]) -> list[str]:
    return list(container(one(docs, "Deployment"))["args"])


def _env(docs: list[Doc]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(one(docs, "Deployment"))["env"]}


def test_default_render_is_namespaced_to_the_release_namespace(helm: Helm) -> None:
    docs = helm.template()
    assert _args(docs) == [
        "run",
        f"--namespace={NS}",
        "--liveness=http://0.0.0.0:8080/healthz",
        "--log-format=json",
        "--cluster-domain=cluster.local",
        "--proxy-image=ghcr.io/modelgate/modelgate-proxy:0.1.0",
        "--proxy-replicas=1",
        "--auth-mode=bearer",
        "--auth-audience=modelgate.io/proxy",
        "--auth-api-keys=true",
        f"--proxy-reviews-binding=mg-modelgate-{NS}-proxy-reviews",
        "--gateway=true",
        f"--gateway-cluster-role=mg-modelgate-{NS}-gateway",
        "--gateway-replicas=1",
        '--gateway-resources={"limits":{"memory":"512Mi"},"requests":{"cpu":"100m","memory":"192Mi"}}',
        '--gateway-ingress={"annotations":{},"className":"","enabled":false,"host":"","tlsSecret":""}',
    ]
    role = one(docs, "Role", "mg-modelgate", NS)
    binding = one(docs, "RoleBinding", "mg-modelgate", NS)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "mg-modelgate"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "mg-modelgate", "namespace": NS}]
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert ("", "secrets") in granted
    assert ("serving.modelgate.io", "servingendpoints/status") in granted
    # a namespaced install needs nothing cluster-wide for the operator but the proxies' reviews binding (and the
    # modelgate-query role users bind): tests/chart/test_template_auth.py
    reviews = f"mg-modelgate-{NS}-proxy-reviews"
    assert {d["metadata"]["name"] for d in find(docs, "ClusterRole")} == {"modelgate-query", "modelgate-view", "modelgate-manage",
                                                                       reviews, f"{reviews}-binding",
                                                                       f"mg-modelgate-{NS}-gateway"}
    assert {d["metadata"]["name"] for d in find(docs, "ClusterRoleBinding")} == {reviews, f"{reviews}-binding"}
    assert find(docs, "CustomResourceDefinition") == []  # only crds/ (helm install), not templates
    assert find(docs, "KopfPeering") == []
    assert find(docs, "ClusterKopfPeering") == []


def test_listed_namespaces_get_a_role_each(helm: Helm) -> None:
    docs = helm.template({"watch.namespaces": ["team-a", "team-b"]})
    assert _args(docs)[1:3] == ["--namespace=team-a", "--namespace=team-b"]
    assert {r["metadata"]["namespace"] for r in find(docs, "Role")} == {"team-a", "team-b"}
    for binding in find(docs, "RoleBinding"):
        assert binding["subjects"][0]["namespace"] == NS  # the ServiceAccount stays in the release namespace
    assert "--all-namespaces" not in _args(docs)


def test_cluster_scope_switches_to_a_cluster_role(helm: Helm) -> None:
    docs = helm.template({"watch.scope": "cluster"})
    assert _args(docs)[1] == "--all-namespaces"
    assert not any(a.startswith("--namespace") for a in _args(docs))
    assert find(docs, "Role") == []
    assert find(docs, "RoleBinding") == []
    rules = one(docs, "ClusterRole", f"mg-modelgate-{NS}")["rules"]
    resources = {r for rule in rules for r in rule["resources"]}
    assert {"secrets", "servingendpoints", "servingendpoints/status", "deployments"} <= resources
    crb = one(docs, "ClusterRoleBinding", f"mg-modelgate-{NS}")
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "mg-modelgate", "namespace": NS}]


def test_cluster_scope_with_a_namespace_list_is_refused(helm: Helm) -> None:
    res = helm.template_text({"watch.scope": "cluster", "watch.namespaces": ["a"]}, check=False)
    assert res.returncode != 0
    assert 'watch.namespaces lists namespaces but watch.scope is "cluster"' in res.stderr


def test_pod_and_container_security(helm: Helm) -> None:
    deployment = one(helm.template(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(deployment)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "tmp", "mountPath": "/tmp"} in container(deployment)["volumeMounts"]  # RO root needs a /tmp
    assert pod["serviceAccountName"] == "mg-modelgate"
    assert container(deployment)["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "liveness"}


def test_image_defaults_to_app_version_and_proxy_defaults_reach_the_operator(helm: Helm) -> None:
    docs = helm.template(
        {
            "image.tag": "dev",
            "proxy.image.repository": "registry.local/proxy",
            "proxy.replicas": 3,
            "proxy.resources": {"requests": {"cpu": "250m"}},
            "verbose": True,
            "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://egress:3128"}],
        }
    )
    c = container(one(docs, "Deployment"))
    assert c["image"] == "ghcr.io/modelgate/modelgate-operator:dev"
    assert "--proxy-image=registry.local/proxy:0.1.0" in c["args"]
    assert "--proxy-replicas=3" in c["args"]
    assert "--verbose" in c["args"]
    env = _env(docs)
    resources = {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}  # merged by helm
    assert json.loads(env["MODELGATE_PROXY_RESOURCES"]) == resources
    assert env["MODELGATE_PROXY_IMAGE_PULL_POLICY"] == "IfNotPresent"
    assert env["HTTPS_PROXY"] == "http://egress:3128"
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_scheduling_values_pass_through(helm: Helm) -> None:
    values = {
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}},
        "priorityClassName": "system-cluster-critical",
        "resources": {"limits": {"memory": "1Gi"}},
    }
    pod = one(helm.template(values), "Deployment")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == values["nodeSelector"]
    assert pod["tolerations"] == values["tolerations"]
    assert pod["affinity"] == values["affinity"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["containers"][0]["resources"]["limits"] == {"memory": "1Gi"}


@pytest.mark.parametrize("scope", ["namespaced", "cluster"])
def test_more_than_one_replica_uses_peering(helm: Helm, scope: str) -> None:
    docs = helm.template({"replicaCount": 2, "watch.scope": scope, "peering.name": "mg-peers"})
    assert "--peering=mg-peers" in _args(docs)
    if scope == "cluster":
        assert one(docs, "ClusterKopfPeering", "mg-peers")
        rules = one(docs, "ClusterRole", f"mg-modelgate-{NS}")["rules"]
        assert any("clusterkopfpeerings" in r["resources"] for r in rules)
    else:
        assert one(docs, "KopfPeering", "mg-peers", NS)
        assert any("kopfpeerings" in r["resources"] for r in one(docs, "Role")["rules"])
    single = helm.template({"replicaCount": 1, "watch.scope": scope})
    assert not any(a.startswith("--peering") for a in _args(single))
    kind = "ClusterKopfPeering" if scope == "cluster" else "KopfPeering"
    # an object of the release, unless the release also templates its CRD: then created after it (a hook)
    assert "annotations" not in one(docs, kind)["metadata"]
    hooked = one(helm.template({"replicaCount": 2, "watch.scope": scope, "crds.install": True}), kind)
    assert hooked["metadata"]["annotations"] == {
        "helm.sh/hook": "post-install,post-upgrade", "helm.sh/hook-delete-policy": "before-hook-creation",
    }  # fmt: skip


@pytest.mark.parametrize("keep", [True, False])
def test_crds_as_templates_behind_a_value_with_keep_annotation(helm: Helm, keep: bool) -> None:
    docs = helm.template({"crds.install": True, "crds.keep": keep})
    crds = {d["metadata"]["name"]: d for d in find(docs, "CustomResourceDefinition")}
    assert set(crds) == {
        "servingendpoints.serving.modelgate.io", "kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev",
    }  # fmt: skip
    for crd in crds.values():
        annotations = crd["metadata"].get("annotations") or {}
        assert (annotations.get("helm.sh/resource-policy") == "keep") is keep
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_include_crds_renders_the_plain_copies(helm: Helm) -> None:
    docs = helm.template(extra=["--include-crds"])
    names = {d["metadata"]["name"] for d in find(docs, "CustomResourceDefinition")}
    assert "servingendpoints.serving.modelgate.io" in names
    assert all("annotations" not in d["metadata"] for d in find(docs, "CustomResourceDefinition"))


def test_monitors_only_when_enabled(helm: Helm) -> None:
    assert not [d for d in helm.template() if d["apiVersion"].startswith("monitoring.coreos.com")]
    docs = helm.template(
        {
            "metrics.serviceMonitor.enabled": True,
            "metrics.serviceMonitor.labels": {"release": "prom"},
            "metrics.podMonitor.enabled": True,
            "watch.namespaces": ["a", "b"],
        }
    )
    sm, pm = one(docs, "ServiceMonitor"), one(docs, "PodMonitor")
    assert sm["apiVersion"] == pm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["a", "b"]}
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] == "http"
    cluster = helm.template({"metrics.podMonitor.enabled": True, "watch.scope": "cluster"})
    assert one(cluster, "PodMonitor")["spec"]["namespaceSelector"] == {"any": True}


def _rules(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


@pytest.mark.parametrize(("scope", "kind", "source"), [("namespaced", "Role", "role.yaml"), ("cluster", "ClusterRole", "cluster_role.yaml")])
def test_rbac_is_the_operators_own(helm: Helm, scope: str, kind: str, source: str) -> None:
    """The chart grants exactly what operator/config/rbac/ (tested by running the operator as that SA) grants."""
    reference = _rules(yaml.safe_load((REPO_ROOT / "operator" / "config" / "rbac" / source).read_text())["rules"])
    peering = {rule for rule in reference if rule[0] == "kopf.dev"}
    assert peering  # the reference includes the peering rules; the chart adds them only for replicaCount > 1
    name = "mg-modelgate" if kind == "Role" else f"mg-modelgate-{NS}"
    assert _rules(one(helm.template({"watch.scope": scope}), kind, name)["rules"]) == reference - peering
    assert _rules(one(helm.template({"watch.scope": scope, "replicaCount": 2}), kind, name)["rules"]) == reference
