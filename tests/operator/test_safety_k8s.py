"""Operator safety against the real API server (issue 11): it never touches objects it does not own, a write the
API server refuses is visible, a create-then-delete leaves nothing behind, ``replicas: 0`` is not Ready.

The test control plane runs no garbage collector (no kube-controller-manager): every child that disappears here
was deleted by the operator itself, by uid, and every child left over would be an orphan in these tests.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml
from lightkube import ApiError, Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Event, Secret, Service

from modelgate_dev.devcluster import DevCluster
from modelgate_operator import render
from modelgate_operator.kube import ServingEndpoint
from tests.chart.test_argocd_health import run_health

from .harness import (
    OperatorProcess,
    assert_no_leak,
    condition,
    endpoint,
    put_secret,
    wait_for,
)
from .samples import endpoint as manifest
from .samples import two_entities

MANAGED = {"app.kubernetes.io/managed-by": render.MANAGED_BY}


def _apply(k8s: DevCluster, namespace: str, name: str, spec: dict[str, Any]) -> None:
    k8s.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(manifest(name, namespace, spec)))


def _current(client: Client, namespace: str, name: str, reason: str) -> dict[str, Any] | None:
    obj = endpoint(client, namespace, name)
    ready = condition(obj, "Ready") or {}
    seen = (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]
    return obj if seen and ready.get("reason") == reason else None


def _warnings(client: Client, namespace: str, name: str) -> list[Any]:
    return [e for e in client.list(Event, namespace=namespace)
            if e.involvedObject.name == name and e.type == "Warning"]  # fmt: skip


def _users_deployment(namespace: str, name: str) -> dict[str, Any]:
    labels = {"app": "users-own"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "example/app:1"}]}}},
    }  # fmt: skip


def test_objects_of_a_childs_name_that_the_endpoint_does_not_own_are_left_alone(
    k8s: DevCluster, namespace: str, operator: OperatorProcess, client: Client
) -> None:
    name = "victim"
    child = render.child_name(name)
    k8s.kubectl("create", "configmap", child, "-n", namespace, "--from-literal=k=v")
    k8s.kubectl("apply", "-f", "-", input=json.dumps(_users_deployment(namespace, child)))
    before_cm = client.get(ConfigMap, child, namespace=namespace)
    before_dep = client.get(Deployment, child, namespace=namespace)
    put_secret(client, namespace, "openai-creds", {"api-key": "sk-ref"})

    _apply(k8s, namespace, name, two_entities())
    obj = wait_for("Ready=False/ChildConflict", lambda: _current(client, namespace, name, "ChildConflict"), timeout=20)
    children = condition(obj, "ChildrenApplied")
    assert children is not None
    assert children["status"] == "False"
    assert f"ConfigMap {child} already exists" in children["message"]
    assert f"Deployment {child} already exists" in children["message"]
    assert obj["status"]["state"] == {"ready": "NOT_READY", "configUpdate": "UPDATE_FAILED"}
    assert "endpointUrl" not in obj["status"]  # no Service of the endpoint exists
    assert run_health(obj)["status"] == "Degraded"
    warned = wait_for("a Warning event", lambda: [e for e in _warnings(client, namespace, name)
                                                   if e.reason == "ChildConflict"])  # fmt: skip
    assert child in (warned[0].message or "")

    # nothing was written: not the user's objects, nor any other child
    cm = client.get(ConfigMap, child, namespace=namespace)
    dep = client.get(Deployment, child, namespace=namespace)
    assert cm.metadata is not None
    assert dep.metadata is not None
    assert cm.metadata.resourceVersion == before_cm.metadata.resourceVersion  # type: ignore[union-attr]
    assert (cm.data, cm.metadata.ownerReferences) == ({"k": "v"}, None)
    assert dep.metadata.ownerReferences is None
    assert dep.metadata.generation == before_dep.metadata.generation  # type: ignore[union-attr]
    for kind, other in ((Service, child), (Secret, render.owned_secret_name(name))):
        with pytest.raises(ApiError, match="not found"):
            client.get(kind, other, namespace=namespace)

    # deleting the endpoint deletes nothing of the user's
    client.delete(ServingEndpoint, name, namespace=namespace)
    wait_for("the endpoint gone", lambda: not list(client.list(ServingEndpoint, namespace=namespace)), timeout=20)
    cm = client.get(ConfigMap, child, namespace=namespace)
    assert cm.data == {"k": "v"}
    assert client.get(Deployment, child, namespace=namespace).metadata.uid == before_dep.metadata.uid  # type: ignore[union-attr]
    assert "Traceback" not in operator.logs()


def test_a_child_the_api_server_rejects_becomes_a_condition_and_an_event(
    k8s: DevCluster, namespace: str, operator: OperatorProcess, client: Client
) -> None:
    name = "rejected"
    put_secret(client, namespace, "openai-creds", {"api-key": "sk-ref"})
    spec = {**two_entities(), "proxy": {"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}}}
    _apply(k8s, namespace, name, spec)
    obj = wait_for("Ready=False/Invalid", lambda: _current(client, namespace, name, "Invalid"), timeout=20)
    children = condition(obj, "ChildrenApplied")
    assert children is not None
    assert (children["status"], children["reason"]) == ("False", "Invalid")
    assert f"Deployment {render.child_name(name)}: 422 Invalid" in children["message"]
    assert "must be less than or equal to memory limit" in children["message"]  # the API server's own words
    assert obj["status"]["state"] == {"ready": "NOT_READY", "configUpdate": "UPDATE_FAILED"}
    assert [e["state"]["deployment"] for e in obj["status"]["servedEntities"]] == ["DEPLOYMENT_FAILED"] * 2
    assert run_health(obj)["status"] == "Degraded"
    warned = wait_for("a Warning event", lambda: [e for e in _warnings(client, namespace, name) if e.reason == "Invalid"])
    assert "must be less than or equal to memory limit" in (warned[0].message or "")

    # fixing the spec heals it (then the proxy waits for its rollout: no Deployment controller runs here)
    _apply(k8s, namespace, name, two_entities())
    obj = wait_for("children applied", lambda: _current(client, namespace, name, "Progressing"), timeout=20)
    assert condition(obj, "ChildrenApplied")["status"] == "True"  # type: ignore[index]
    assert obj["status"]["state"] == {"ready": "NOT_READY", "configUpdate": "IN_PROGRESS"}


def test_create_then_delete_bursts_leave_no_orphans(
    k8s: DevCluster, namespace: str, operator: OperatorProcess, client: Client
) -> None:
    put_secret(client, namespace, "openai-creds", {"api-key": "sk-ref"})
    names = [f"burst-{i}" for i in range(10)]
    for delay in (0.0, 0.05, 0.3):  # at once, within the first reconcile, after it
        for n in names:
            client.create(ServingEndpoint.from_dict(manifest(n, namespace, two_entities())))  # type: ignore[attr-defined]
        time.sleep(delay)
        for n in names:
            client.delete(ServingEndpoint, n, namespace=namespace)
        wait_for("every endpoint gone", lambda: not list(client.list(ServingEndpoint, namespace=namespace)),
                 timeout=60)  # fmt: skip
        time.sleep(1.0)  # anything still in flight would land now
        left = {kind.__name__: [o.metadata.name for o in client.list(kind, namespace=namespace, labels=MANAGED)]
                for kind in (Deployment, Service, ConfigMap, Secret)}  # fmt: skip
        assert left == {"Deployment": [], "Service": [], "ConfigMap": [], "Secret": []}, f"delay {delay}: {left}"
    assert "Traceback" not in operator.logs()


def test_scaled_to_zero_is_not_ready(
    k8s: DevCluster, namespace: str, operator: OperatorProcess, client: Client
) -> None:
    name = "zero"
    put_secret(client, namespace, "openai-creds", {"api-key": "sk-ref"})
    _apply(k8s, namespace, name, {**two_entities(), "proxy": {"replicas": 0}})
    obj = wait_for("Ready=False/ScaledToZero", lambda: _current(client, namespace, name, "ScaledToZero"), timeout=20)
    ready = condition(obj, "Ready")
    assert ready is not None
    assert ready["status"] == "False"
    assert "scaled to zero" in ready["message"]
    assert obj["status"]["state"]["ready"] == "NOT_READY"
    assert run_health(obj)["status"] == "Suspended"  # Argo CD's word for "stopped on purpose"


def test_a_key_pasted_into_a_reference_field_is_not_echoed(k8s: DevCluster, namespace: str) -> None:
    """The API server's rejection (what the client sees, and what an audit log records) holds no pasted value."""
    pasted = "sk-SENTINEL-pasted-0123456789abcdef"
    custom = two_entities(ref=pasted)
    openai = two_entities()
    openai["servedEntities"][0]["externalModel"]["openaiConfig"] = {"openaiApiKey": pasted}
    for where, spec in (("customProviderConfig.bearerTokenAuth.token", custom), ("openaiConfig.openaiApiKey", openai)):
        res = k8s.kubectl("apply", "--server-side", "-f", "-", check=False,
                          input=yaml.safe_dump(manifest("pasted", namespace, spec)))  # fmt: skip
        assert res.returncode != 0, f"{where}: accepted"
        assert where.rsplit(".", 1)[-1] in res.stderr
        assert "must be a secret reference {{secrets/<secret-name>/<key>}}" in res.stderr
        assert_no_leak(f"rejection of {where}", [pasted], {"kubectl output": res.stdout + res.stderr})
        assert "\\{\\{" not in res.stderr  # no raw regular expression either
    # other formats: a message of ours, not the raw regular expression
    bad_version = two_entities()
    bad_version["servedEntities"][0]["externalModel"]["openaiConfig"]["openaiApiVersion"] = "not-a-version"
    res = k8s.kubectl("apply", "--server-side", "-f", "-", check=False,
                      input=yaml.safe_dump(manifest("version", namespace, bad_version)))  # fmt: skip
    assert res.returncode != 0
    assert "openaiApiVersion: Invalid value: \"string\": must be a date such as 2024-10-21" in res.stderr
    assert "^(" not in res.stderr


def test_kubectl_explain_shows_the_reference_syntax(k8s: DevCluster) -> None:
    out = k8s.kubectl("explain", "servingendpoint.spec.servedEntities.externalModel.openaiConfig.openaiApiKey").stdout
    assert "{{secrets/<secret-name>/<key>}}" in out
    token = k8s.kubectl("explain", "servingendpoint.spec.servedEntities.externalModel.customProviderConfig"
                        ".bearerTokenAuth.token").stdout  # fmt: skip
    assert "{{secrets/<secret-name>/<key>}}" in token
