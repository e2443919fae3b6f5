"""``spec.proxy.autoscaling`` / ``disruptionBudget`` and the operator's Redis wiring against the real
kube-apiserver: the HorizontalPodAutoscaler and PodDisruptionBudget are rendered, accepted by the API server,
owned by the endpoint, removed when the spec drops them and deleted with the endpoint; the Deployment leaves its
replica count to the autoscaler; rate limits on in-process counters with several replicas are reported in
``ConfigValid``; with ``--redis-secret`` the proxy gets the URL from a secretKeyRef and the password as a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import ApiError, Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.resources.policy_v1 import PodDisruptionBudget

from modelgate_dev.devcluster import DevCluster
from modelgate_operator import render
from modelgate_operator.kube import ServingEndpoint
from modelgate_proxy.spec import ServingEndpointSpec

from .harness import OperatorProcess, condition, endpoint, install_rbac, put_secret, settled, wait_for
from .samples import endpoint as manifest
from .samples import two_entities

NAME = "scaled"
CHILD = render.child_name(NAME)
LIMITS = {"rateLimits": [{"key": "endpoint", "calls": 10, "renewalPeriod": "minute"}]}


def apply_endpoint(k8s: DevCluster, namespace: str, spec: dict[str, Any]) -> None:
    k8s.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(manifest(NAME, namespace, spec)))


def applied(client: Client, namespace: str) -> dict[str, Any] | None:
    """The endpoint once the operator did its part (harness.settled: children applied, no rollout on this plane)."""
    return settled(endpoint(client, namespace, NAME))


def absent(client: Client, kind: type[Any], namespace: str) -> bool:
    try:
        client.get(kind, CHILD, namespace=namespace)
    except ApiError as exc:
        return exc.status.code == 404
    return False


def test_spec_validation_of_scaling() -> None:
    base = two_entities()
    with pytest.raises(ValueError, match="minReplicas must not be above maxReplicas"):
        ServingEndpointSpec.model_validate({**base, "proxy": {"autoscaling": {"minReplicas": 4, "maxReplicas": 2}}})
    with pytest.raises(ValueError, match="exactly one of minAvailable and maxUnavailable"):
        ServingEndpointSpec.model_validate({**base, "proxy": {"disruptionBudget": {"minAvailable": 1,
                                                                                  "maxUnavailable": 1}}})
    with pytest.raises(ValueError, match="replicas and autoscaling exclude each other"):
        ServingEndpointSpec.model_validate({**base, "proxy": {"replicas": 2, "autoscaling": {"maxReplicas": 3}}})


def test_autoscaler_and_budget_are_owned_accepted_and_removed(
    k8s: DevCluster, namespace: str, operator: OperatorProcess, client: Client
) -> None:
    put_secret(client, namespace, "openai-creds", {"api-key": "sk-ref"})
    spec = {**two_entities(), "aiGateway": LIMITS, "proxy": {
        "autoscaling": {"minReplicas": 2, "maxReplicas": 5, "targetCpuUtilizationPercentage": 70,
                        "podsMetric": {"name": "modelgate_requests_per_second", "averageValue": "20"}},
        "disruptionBudget": {"maxUnavailable": 1}}}
    apply_endpoint(k8s, namespace, spec)
    obj = wait_for("children applied", lambda: applied(client, namespace), timeout=30)
    uid = obj["metadata"]["uid"]
    hpa = client.get(HorizontalPodAutoscaler, CHILD, namespace=namespace)
    assert hpa.spec.minReplicas == 2
    assert hpa.spec.maxReplicas == 5
    assert hpa.spec.scaleTargetRef.name == CHILD
    assert hpa.spec.scaleTargetRef.kind == "Deployment"
    kinds = sorted(m.type for m in hpa.spec.metrics or [])
    assert kinds == ["Pods", "Resource"]
    pdb = client.get(PodDisruptionBudget, CHILD, namespace=namespace)
    assert pdb.spec.maxUnavailable == 1
    assert pdb.spec.selector.matchLabels == render.selector_labels(NAME)
    for child in (hpa, pdb):
        refs = child.metadata.ownerReferences or []
        assert [(r.kind, r.uid, r.controller) for r in refs] == [("ServingEndpoint", uid, True)]
    # the autoscaler owns the replica count: the operator does not set it
    dep = client.get(Deployment, CHILD, namespace=namespace)
    assert "replicas" not in yaml.safe_dump([f.fieldsV1 for f in dep.metadata.managedFields or []
                                             if f.manager == "modelgate-operator"])
    assert "--rate-limit-replicas" not in dep.spec.template.spec.containers[0].command
    valid = condition(obj, "ConfigValid")
    assert valid is not None
    assert (valid["status"], valid["reason"]) == ("True", "LimitsPerReplica")
    assert "up to 5 replicas" in valid["message"]
    # the spec drops the budget: it is deleted, the autoscaler stays
    del spec["proxy"]["disruptionBudget"]
    apply_endpoint(k8s, namespace, spec)
    wait_for("the budget deleted", lambda: absent(client, PodDisruptionBudget, namespace), timeout=30)
    assert client.get(HorizontalPodAutoscaler, CHILD, namespace=namespace).spec.maxReplicas == 5
    # the endpoint deleted: its scaling children go with it
    client.delete(ServingEndpoint, NAME, namespace=namespace)
    wait_for("the autoscaler deleted", lambda: absent(client, HorizontalPodAutoscaler, namespace), timeout=30)


def test_redis_secret_reaches_the_proxy(
    k8s: DevCluster, namespace: str, client: Client, tmp_path: Path
) -> None:
    kubeconfig = install_rbac(k8s, namespace)
    put_secret(client, namespace, "openai-creds", {"api-key": "sk-ref"})
    put_secret(client, namespace, "modelgate-redis", {"url": "redis://redis:6379/0", "password": "pw-SENTINEL"})
    with OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log", "--log-format", "json",
                         "--redis-secret", "modelgate-redis") as op:
        apply_endpoint(k8s, namespace, {**two_entities(), "aiGateway": LIMITS, "proxy": {"replicas": 3}})
        obj = wait_for("children applied", lambda: applied(client, namespace), timeout=30)
        dep = client.get(Deployment, CHILD, namespace=namespace)
        container = dep.spec.template.spec.containers[0]
        env = {e.name: e.valueFrom.secretKeyRef for e in container.env or []}
        ref = env["MODELGATE_RATE_LIMIT_REDIS_URL"]
        assert (ref.name, ref.key) == ("modelgate-redis", "url")
        command = container.command
        assert command[command.index("--rate-limit-redis-password-file") + 1] == "/etc/modelgate/redis/password"
        assert command[command.index("--rate-limit-redis-prefix") + 1] == f"modelgate:{namespace}"
        assert "--rate-limit-replicas" not in command  # one shared count: the replicas divide nothing
        volumes = {v.name: v.secret for v in dep.spec.template.spec.volumes or [] if v.secret is not None}
        assert volumes["redis"].secretName == "modelgate-redis"
        valid = condition(obj, "ConfigValid")
        assert valid is not None
        assert valid["reason"] == "ConfigValid"
        assert "pw-SENTINEL" not in yaml.safe_dump(dep.to_dict())
        assert "pw-SENTINEL" not in op.logs()
