"""The proxy's identity and rights, as the operator wires them, checked by the real API server: the objects are
accepted, and the ServiceAccount's rights are what real SubjectAccessReviews (``kubectl auth can-i --as``) answer.
Mode none says so in a condition, a status field and an Event; Ready stays computed from the rest (here, with no
node, from the rollout that cannot happen: ``Progressing``). The proxy answering with bearer tokens in a real pod is
checked on the real node (``tests/node``)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import yaml
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap
from lightkube.resources.rbac_authorization_v1 import Role

from modelgate_dev.devcluster import DevCluster
from modelgate_operator import render, render_auth

from .harness import (
    OperatorProcess,
    can_as_service_account,
    condition,
    endpoint,
    install_rbac,
    reviews_subjects,
    settled,
    wait_for,
)
from .samples import endpoint as manifest
from .samples import two_entities

NAME = "chat"
CHILD = render.child_name(NAME)
RBAC = render_auth.api_keys_name(CHILD)


def _apply(k8s: DevCluster, namespace: str, authentication: dict[str, Any] | None = None) -> None:
    spec = two_entities()
    spec["servedEntities"][1]["externalModel"]["customProviderConfig"]["bearerTokenAuth"] = {"tokenPlaintext": "x" * 8}
    if authentication is not None:
        spec["proxy"] = {"authentication": authentication}
    k8s.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(manifest(NAME, namespace, spec)))


def _settled(client: Client, namespace: str, ctype: str, status: str) -> dict[str, Any] | None:
    obj = endpoint(client, namespace, NAME)
    cond = condition(obj, ctype)
    current = obj.get("status", {}).get("observedGeneration") == obj["metadata"]["generation"]
    return obj if current and cond is not None and cond["status"] == status else None


def _can(k8s: DevCluster, namespace: str, *args: str) -> bool:
    return can_as_service_account(k8s, namespace, render_auth.SERVICE_ACCOUNT, *args)


def test_bearer_proxy_runs_as_a_service_account_that_may_only_review_and_read_its_api_keys(
    k8s: DevCluster, namespace: str, operator: OperatorProcess, client: Client
) -> None:
    _apply(k8s, namespace)
    obj = wait_for("children applied", lambda: settled(endpoint(client, namespace, NAME)), timeout=20)
    auth = condition(obj, "Authenticated")
    assert auth is not None
    assert (auth["status"], auth["reason"]) == ("True", "BearerTokens"), auth
    assert obj["status"]["authentication"] == {"mode": "bearer", "open": False, "audience": "modelgate.io/proxy",
                                               "apiKeys": True}  # fmt: skip
    pod = client.get(Deployment, CHILD, namespace=namespace).spec.template.spec  # type: ignore[union-attr]
    assert pod is not None
    assert pod.serviceAccountName == "modelgate-proxy"
    assert (namespace, "modelgate-proxy") in reviews_subjects(client)
    other = "kube-system"
    checks = {
        ("create", "tokenreviews.authentication.k8s.io"): True,
        ("create", "subjectaccessreviews.authorization.k8s.io"): True,
        ("get", "secrets", "-n", namespace): True,  # API keys on: the namespace's Secrets (not by label: RBAC)
        ("watch", "secrets", "-n", namespace): True,
        ("get", "secrets", "-n", other): False,
        ("list", "secrets", "--all-namespaces"): False,
        ("create", "secrets", "-n", namespace): False,
        ("create", "localsubjectaccessreviews.authorization.k8s.io", "-n", namespace): False,
        ("list", "configmaps", "-n", namespace): False,
        ("get", "servingendpoints.serving.modelgate.io", "-n", namespace): False,
        ("create", "pods", "-n", namespace): False,
        ("create", "serviceaccounts", "--subresource=token", "-n", namespace): False,
        ("list", "tokenreviews.authentication.k8s.io"): False,
    }
    answers = {args: _can(k8s, namespace, *args) for args in checks}
    print("can-i as the proxy ServiceAccount:", json.dumps({" ".join(k): v for k, v in answers.items()}, indent=1))
    assert answers == checks

    # API keys off: the Role goes, and with it the right to read Secrets
    _apply(k8s, namespace, {"apiKeys": False})
    wait_for("Role removed", lambda: _role_gone(client, namespace), timeout=20)
    assert not _can(k8s, namespace, "get", "secrets", "-n", namespace)
    assert _can(k8s, namespace, "create", "tokenreviews.authentication.k8s.io")
    auth_config = yaml.safe_load((client.get(ConfigMap, CHILD, namespace=namespace).data or {})[render_auth.AUTH_KEY])
    assert "api_key_secrets" not in auth_config

    # deleting the namespace's last endpoint takes its ServiceAccount out of the reviews binding
    k8s.kubectl("delete", "servingendpoint", NAME, "-n", namespace, "--wait=true", "--timeout=30s")
    wait_for("subject removed", lambda: (namespace, "modelgate-proxy") not in reviews_subjects(client), timeout=20)
    assert not _can(k8s, namespace, "create", "tokenreviews.authentication.k8s.io")


def _role_gone(client: Client, namespace: str) -> bool:
    return not [r for r in client.list(Role, namespace=namespace) if r.metadata and r.metadata.name == RBAC]


def test_mode_none_is_reported_open_with_a_condition_and_an_event(
    k8s: DevCluster, namespace: str, operator: OperatorProcess, client: Client
) -> None:
    _apply(k8s, namespace, {"mode": "none"})
    obj = wait_for("children applied", lambda: settled(endpoint(client, namespace, NAME)), timeout=20)
    ready = condition(obj, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "Progressing"), ready  # computed from the rollout, not auth
    auth = condition(obj, "Authenticated")
    assert auth is not None
    assert (auth["status"], auth["reason"]) == ("False", "AuthenticationDisabled"), auth
    assert obj["status"]["authentication"] == {"mode": "none", "open": True}

    def event() -> list[dict[str, Any]]:
        items = json.loads(k8s.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
        return [e for e in items if e["reason"] == "AuthenticationDisabled" and e["involvedObject"]["name"] == NAME]

    (ev,) = wait_for("AuthenticationDisabled event", event, timeout=10)
    assert ev["type"] == "Warning"
    assert "anyone" in ev["message"]
    dep = client.get(Deployment, CHILD, namespace=namespace).spec.template.spec  # type: ignore[union-attr]
    assert dep is not None
    assert "--no-auth" in (dep.containers[0].command or [])
    assert not [v for v in dep.volumes or [] if v.name == "kube-api-access"]
    assert _role_gone(client, namespace)  # no API-key Role in mode none
    assert (namespace, "modelgate-proxy") not in reviews_subjects(client)  # no reviews for an open endpoint

    _apply(k8s, namespace, {"mode": "bearer"})  # turned back on: the condition and the status follow
    obj = wait_for("Authenticated", lambda: _settled(client, namespace, "Authenticated", "True"), timeout=20)
    assert obj["status"]["authentication"]["open"] is False
    assert (namespace, "modelgate-proxy") in reviews_subjects(client)


def test_the_operator_may_bind_its_api_key_role_only_once_the_role_exists(k8s: DevCluster, namespace: str) -> None:
    """Why the operator writes its Roles before the rest (children.ChildWriter.apply_all): it holds no ``bind`` verb,
    so the API server admits its RoleBinding only after checking the operator holds every rule of the bound Role,
    which must exist. A binding applied first is refused, with a code the operator treats as permanent."""
    kubeconfig = install_rbac(k8s, namespace)
    meta = {"namespace": namespace, "name": RBAC}
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}  # fmt: skip
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RBAC},
               "subjects": [{"kind": "ServiceAccount", "name": render_auth.SERVICE_ACCOUNT, "namespace": namespace}]}

    def apply(doc: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return k8s.kubectl("apply", "--server-side", "--field-manager=modelgate-operator", "-f", "-",
                           input=yaml.safe_dump(doc), kubeconfig=kubeconfig, check=False)  # fmt: skip

    first = apply(binding)
    assert first.returncode != 0, first.stdout
    assert "NotFound" in first.stderr or "forbidden" in first.stderr, first.stderr
    assert apply(role).returncode == 0
    second = apply(binding)
    assert second.returncode == 0, second.stderr
