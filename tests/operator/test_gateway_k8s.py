"""The workspace gateway as the operator renders it, checked by the real API server: one per namespace with
ServingEndpoints, accepted, owned by every endpoint of the namespace, mounting exactly the referenced Secret keys
(a rotation rolls it), its ServiceAccount's rights as real SubjectAccessReviews (``kubectl auth can-i --as``)
answer them, and gone with the namespace's last endpoint (docs/workspace-gateway.md)."""

from __future__ import annotations

import json
from typing import Any

import yaml
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Service, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import RoleBinding

from modelgate_dev.devcluster import DevCluster
from modelgate_operator import render, render_auth, render_gateway

from .harness import OperatorProcess, can_as_service_account, put_secret, reviews_subjects, wait_for
from .samples import endpoint as manifest
from .samples import two_entities

GW = render_gateway.NAME


def _apply(k8s: DevCluster, namespace: str, name: str, ref: str) -> None:
    spec = two_entities(ref=ref)
    k8s.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(manifest(name, namespace, spec)))


def _deployment(client: Client, namespace: str) -> dict[str, Any] | None:
    found = [d for d in client.list(Deployment, namespace=namespace) if d.metadata and d.metadata.name == GW]
    return found[0].to_dict() if found else None


def _owners(obj: dict[str, Any]) -> list[str]:
    return sorted(r["name"] for r in obj["metadata"].get("ownerReferences") or [] if r["kind"] == "ServingEndpoint")


def _can(k8s: DevCluster, namespace: str, *args: str) -> bool:
    return can_as_service_account(k8s, namespace, GW, *args)


def _gone(client: Client, namespace: str) -> bool:
    kinds: list[Any] = [Deployment, Service, ConfigMap, ServiceAccount, RoleBinding]
    return not any(o.metadata and o.metadata.name == GW for kind in kinds for o in client.list(kind, namespace=namespace))


def test_one_gateway_per_namespace_owned_by_its_endpoints_with_least_rights_and_gone_with_the_last(
    k8s: DevCluster, namespace: str, operator: OperatorProcess, client: Client
) -> None:
    put_secret(client, namespace, "creds-a", {"api-key": "sk-a-000", "unused": "x"})
    _apply(k8s, namespace, "alpha", "{{secrets/creds-a/api-key}}")
    _apply(k8s, namespace, "beta", "{{secrets/creds-b/token}}")  # a Secret that does not exist (yet)

    dep = wait_for("gateway for both", lambda: (d := _deployment(client, namespace)) and _owners(d) == ["alpha", "beta"]
                   and d, timeout=30)  # fmt: skip
    assert all(r.get("controller") is False for r in dep["metadata"]["ownerReferences"])
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"][:4] == ["modelgate", "serve", "--management-namespace", namespace]
    assert "--auth-config" in container["command"]
    assert pod["serviceAccountName"] == GW
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert {"readinessProbe", "livenessProbe", "resources"} <= set(container)
    sources = next(v for v in pod["volumes"] if v["name"] == "secrets")["projected"]["sources"]
    assert [(s["secret"]["name"], s["secret"]["items"], s["secret"]["optional"]) for s in sources] == [
        ("creds-a", [{"key": "api-key", "path": "creds-a/api-key"}], True),  # only the referenced key
        ("creds-b", [{"key": "token", "path": "creds-b/token"}], True),
    ]
    auth = yaml.safe_load((client.get(ConfigMap, GW, namespace=namespace).data or {})[render_auth.AUTH_KEY])
    assert auth["mode"] == "bearer"
    assert auth["authorize"] == "rbac"
    assert "api_key_secrets" not in auth
    svc = client.get(Service, GW, namespace=namespace)
    assert svc.spec is not None
    assert svc.spec.selector == render_gateway.selector_labels()
    rb = client.get(RoleBinding, GW, namespace=namespace)
    assert rb.roleRef.name == "modelgate-gateway"
    assert (namespace, GW) in wait_for("gateway reviews subject", lambda: (s := reviews_subjects(client)) and
                                       (namespace, GW) in s and s, timeout=20)  # fmt: skip

    checks = {
        ("create", "servingendpoints.serving.modelgate.io", "-n", namespace): True,
        ("update", "servingendpoints.serving.modelgate.io", "-n", namespace): True,
        ("delete", "servingendpoints.serving.modelgate.io", "-n", namespace): True,
        ("watch", "servingendpoints.serving.modelgate.io", "-n", namespace): True,
        ("create", "secrets", "-n", namespace): True,  # the plaintext Secrets of create bodies
        ("get", "secrets", "-n", namespace): False,  # the kubelet mounts the referenced keys; the gateway reads none
        ("list", "secrets", "-n", namespace): False,
        ("update", "secrets", "-n", namespace): False,
        ("create", "tokenreviews.authentication.k8s.io"): True,
        ("create", "subjectaccessreviews.authorization.k8s.io"): True,
        ("get", "servingendpoints.serving.modelgate.io", "-n", "kube-system"): False,
        ("patch", "servingendpoints.serving.modelgate.io", "--subresource=status", "-n", namespace): False,
        ("create", "pods", "-n", namespace): False,
        # the permissions API's Roles and RoleBindings, in its namespace only, never escalate or bind
        ("create", "rolebindings.rbac.authorization.k8s.io", "-n", namespace): True,
        ("create", "roles.rbac.authorization.k8s.io", "-n", namespace): True,
        ("query", "servingendpoints.serving.modelgate.io", "-n", namespace): True,
        ("escalate", "roles.rbac.authorization.k8s.io", "-n", namespace): False,
        ("bind", "clusterroles.rbac.authorization.k8s.io"): False,
        ("create", "rolebindings.rbac.authorization.k8s.io", "-n", "kube-system"): False,
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"): False,
        ("impersonate", "users"): False,
    }
    answers = {args: _can(k8s, namespace, *args) for args in checks}
    print("can-i as the gateway ServiceAccount:", json.dumps({" ".join(k): v for k, v in answers.items()}, indent=1))
    assert answers == checks

    # a rotation of a referenced value rolls the gateway (its checksum); an unreferenced key does not matter
    before = dep["spec"]["template"]["metadata"]["annotations"][render.CHECKSUM_ANNOTATION]
    put_secret(client, namespace, "creds-a", {"api-key": "sk-a-111", "unused": "x"})
    wait_for("rolled", lambda: (d := _deployment(client, namespace)) and d["spec"]["template"]["metadata"]
             ["annotations"][render.CHECKSUM_ANNOTATION] != before, timeout=30)  # fmt: skip

    k8s.kubectl("delete", "servingendpoint", "beta", "-n", namespace, "--wait=true", "--timeout=30s")
    dep = wait_for("one owner left", lambda: (d := _deployment(client, namespace)) and _owners(d) == ["alpha"] and d,
                   timeout=30)  # fmt: skip
    sources = next(v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "secrets")["projected"]
    assert [s["secret"]["name"] for s in sources["sources"]] == ["creds-a"]

    k8s.kubectl("delete", "servingendpoint", "alpha", "-n", namespace, "--wait=true", "--timeout=30s")
    wait_for("gateway deleted", lambda: _gone(client, namespace), timeout=30)
    wait_for("gateway subject removed", lambda: (namespace, GW) not in reviews_subjects(client), timeout=20)
    assert not _can(k8s, namespace, "create", "servingendpoints.serving.modelgate.io", "-n", namespace)


def test_an_object_of_the_gateways_name_that_is_not_ours_is_left_alone(
    k8s: DevCluster, namespace: str, operator: OperatorProcess, client: Client
) -> None:
    k8s.kubectl("create", "service", "clusterip", GW, "--tcp=80:8080", "-n", namespace)
    _apply(k8s, namespace, "alpha", "{{secrets/creds-a/api-key}}")
    wait_for("logged", lambda: "is not the operator's gateway" in operator.logs() or None, timeout=30)
    assert _deployment(client, namespace) is None
    svc = client.get(Service, GW, namespace=namespace)
    assert svc.metadata is not None
    assert not svc.metadata.ownerReferences
