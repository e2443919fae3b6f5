"""The operator against the real kube-apiserver, running as its least-privilege ServiceAccount identity."""

from __future__ import annotations

import base64
import json
import secrets as pysecrets
import time
from typing import Any

import pytest
import yaml
from lightkube import ApiError, Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Secret, Service
from lightkube.types import PatchType

from modelgate_dev.devcluster import DevCluster
from modelgate_operator import render
from modelgate_operator.kube import ServingEndpoint

from .harness import (
    OperatorProcess,
    assert_no_leak,
    cluster_texts,
    condition,
    endpoint,
    install_rbac,
    put_secret,
    settled,
    wait_for,
)
from .samples import endpoint as manifest
from .samples import two_entities

NAME = "chat"
CHILD = render.child_name(NAME)
OWNED = render.owned_secret_name(NAME)


def apply_endpoint(k8s: DevCluster, namespace: str, spec: dict[str, Any]) -> None:
    k8s.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(manifest(NAME, namespace, spec)))


def ready(client: Client, namespace: str, status: str = "True") -> dict[str, Any] | None:
    obj = endpoint(client, namespace, NAME)
    cond = condition(obj, "Ready")
    gen = obj["metadata"]["generation"]
    if cond and cond["status"] == status and obj["status"].get("observedGeneration") == gen:
        return obj
    return None


def reconciled(client: Client, namespace: str) -> dict[str, Any] | None:
    """The endpoint, once the operator did its part at the current generation (see harness.settled)."""
    return settled(endpoint(client, namespace, NAME))


def checksum(client: Client, namespace: str) -> str:
    dep = client.get(Deployment, CHILD, namespace=namespace)
    assert dep.spec is not None
    assert dep.spec.template.metadata is not None
    annotations = dep.spec.template.metadata.annotations or {}
    return annotations[render.CHECKSUM_ANNOTATION]


def versions(client: Client, namespace: str) -> dict[str, str | None]:
    objs: list[Any] = [
        client.get(ServingEndpoint, NAME, namespace=namespace),
        client.get(ConfigMap, CHILD, namespace=namespace),
        client.get(Deployment, CHILD, namespace=namespace),
        client.get(Service, CHILD, namespace=namespace),
        client.get(Secret, OWNED, namespace=namespace),
    ]
    return {f"{type(o).__name__}": o.metadata.resourceVersion for o in objs}


def managed_fields(client: Client, namespace: str) -> list[Any]:
    meta = client.get(ServingEndpoint, NAME, namespace=namespace).metadata
    assert meta is not None
    return list(meta.managedFields or [])


def test_operator_identity_is_least_privilege(k8s: DevCluster, namespace: str) -> None:
    install_rbac(k8s, namespace)
    who = f"system:serviceaccount:{namespace}:modelgate-operator"

    def can(*args: str) -> bool:
        res = k8s.kubectl("auth", "can-i", *args, "-n", namespace, f"--as={who}", check=False)
        return res.stdout.strip() == "yes"

    se = "servingendpoints.serving.modelgate.io"
    assert can("patch", se, "--subresource=status")
    assert can("update", se, "--subresource=finalizers")  # blockOwnerDeletion (OwnerReferencesPermissionEnforcement)
    assert can("watch", "secrets")
    assert can("patch", "deployments.apps")
    assert can("create", "events")
    assert not can("delete", "servingendpoints.serving.modelgate.io")
    assert not can("update", se, "--subresource=status")
    assert not can("patch", se, "--subresource=finalizers")
    assert not can("update", se)
    assert not can("list", "pods")
    assert not can("create", "pods")
    assert can("create", "rolebindings")  # the proxies' API-key Role: only rights the operator holds (RBAC checks)
    assert can("create", "serviceaccounts")
    assert not can("create", "serviceaccounts", "--subresource=token")
    assert not can("create", "clusterrolebindings")
    assert not can("update", "clusterrolebindings")  # only the proxy-reviews binding, by name:
    assert can("update", "clusterrolebindings/modelgate-proxy-reviews")
    assert can("bind", "clusterroles/modelgate-proxy-reviews")
    assert not can("bind", "clusterroles/cluster-admin")
    assert not can("escalate", "roles")
    assert not can("list", "secrets", "--all-namespaces")


def test_lifecycle_secrets_rotation_noop_and_deletion(
    k8s: DevCluster, namespace: str, operator: OperatorProcess, client: Client
) -> None:
    plaintext = f"sk-SENTINEL-plain-{pysecrets.token_hex(8)}"
    referenced = f"sk-SENTINEL-ref-{pysecrets.token_hex(8)}"
    rotated = f"sk-SENTINEL-rot-{pysecrets.token_hex(8)}"
    sentinels = (plaintext, referenced, rotated)

    def no_leak(phase: str) -> None:
        """After each phase: no sentinel, raw or base64, in ConfigMaps, Deployments, Services, Events, the
        endpoint's status or the operator's logs (only the owned Secret may hold them)."""
        assert_no_leak(phase, sentinels, {**cluster_texts(k8s, namespace, NAME), "operator logs": operator.logs()})

    # 1. the referenced Secret does not exist yet -> Ready=False naming the reference, nothing deployed
    apply_endpoint(k8s, namespace, two_entities(plaintext=plaintext))
    obj = wait_for("Ready=False/SecretNotFound", lambda: ready(client, namespace, "False"), timeout=20)
    cond = condition(obj, "Ready")
    assert cond is not None
    assert cond["reason"] == "SecretNotFound"
    assert "{{secrets/openai-creds/api-key}}" in cond["message"]
    assert condition(obj, "SecretsResolved")["status"] == "False"  # type: ignore[index]
    assert obj["status"]["state"] == {"ready": "NOT_READY", "configUpdate": "UPDATE_FAILED"}
    with pytest.raises(ApiError):
        client.get(Deployment, CHILD, namespace=namespace)
    no_leak("create (Secret missing)")

    # 2. create it -> reconciled within 5 s, without restarting the operator; the proxy waits for its rollout
    # (no Deployment controller here: Ready=True from real pods is tests/node's)
    put_secret(client, namespace, "openai-creds", {"api-key": referenced, "unused": "x"})
    t0 = time.monotonic()
    obj = wait_for("reconciled after the Secret appeared", lambda: reconciled(client, namespace), timeout=5)
    assert time.monotonic() - t0 < 5
    status = obj["status"]
    assert status["entities"] == "gpt-4o=90%,claude=10%"
    assert status["state"] == {"ready": "NOT_READY", "configUpdate": "IN_PROGRESS"}
    assert condition(obj, "Ready")["reason"] == "Progressing"  # type: ignore[index]
    assert status["endpointUrl"] == f"http://{CHILD}.{namespace}.svc.cluster.local/serving-endpoints/chat/invocations"
    assert {c["type"] for c in status["conditions"]} == {"Ready", "ConfigValid", "SecretsResolved", "ChildrenApplied",
                                                       "ProxyAvailable", "Authenticated"}
    assert all(c["observedGeneration"] == obj["metadata"]["generation"] for c in status["conditions"])
    assert [e["state"]["deployment"] for e in status["servedEntities"]] == ["DEPLOYMENT_CREATING"] * 2

    # children, with the expected content
    cm = client.get(ConfigMap, CHILD, namespace=namespace)
    config = yaml.safe_load((cm.data or {})[render.CONFIG_KEY])
    assert config["spec"]["servedEntities"][0]["externalModel"]["openaiConfig"]["openaiApiKey"] == (
        f"{{{{secrets/{OWNED}/gpt-4o.openaiApiKey}}}}"
    )
    owned = client.get(Secret, OWNED, namespace=namespace)
    assert base64.b64decode((owned.data or {})["gpt-4o.openaiApiKey"]).decode() == plaintext
    dep = client.get(Deployment, CHILD, namespace=namespace)
    assert dep.metadata is not None
    assert dep.metadata.ownerReferences
    assert dep.metadata.ownerReferences[0].uid == obj["metadata"]["uid"]
    assert dep.metadata.managedFields
    assert {m.manager for m in dep.metadata.managedFields} >= {"modelgate-operator"}
    # every write of the operator carries its field manager (else the server records the client library's name)
    managers = {(m.manager, m.operation, m.subresource) for m in managed_fields(client, namespace)}
    assert ("modelgate-operator", "Update", "status") in managers
    assert {m for m, _, _ in managers} <= {"kubectl", "modelgate-operator", "kopf"}, managers
    for kind, name in ((ConfigMap, CHILD), (Secret, OWNED), (Service, CHILD)):
        obj_meta = client.get(kind, name, namespace=namespace).metadata
        assert obj_meta is not None
        assert {m.manager for m in obj_meta.managedFields or []} == {"modelgate-operator"}, kind
    svc = client.get(Service, CHILD, namespace=namespace)
    assert svc.spec is not None
    assert svc.spec.selector == render.selector_labels(NAME)
    first_sum = checksum(client, namespace)
    no_leak("create")
    # the scan would see one: the owned Secret (allowed to) holds the plaintext, base64-encoded
    owned_text = k8s.kubectl("get", "secret", OWNED, "-n", namespace, "-o", "json").stdout
    with pytest.raises(AssertionError, match=r"a credential \(base64\) leaked into owned Secret"):
        assert_no_leak("self-check", sentinels, {"owned Secret": owned_text})

    # 3. a no-op: re-apply the same manifest, and poke the referenced Secret (a reconcile runs) -> nothing moves
    before = versions(client, namespace)
    apply_endpoint(k8s, namespace, two_entities(plaintext=plaintext))
    client.patch(Secret, "openai-creds", {"metadata": {"labels": {"poke": "1"}}}, namespace=namespace,
                 patch_type=PatchType.MERGE)  # fmt: skip
    time.sleep(2.0)
    assert versions(client, namespace) == before
    assert "Traceback" not in operator.logs()

    # 4. update the traffic split -> ConfigMap, pod template and observed generation change
    apply_endpoint(k8s, namespace, two_entities(plaintext=plaintext, split=50))
    obj = wait_for("observedGeneration 2", lambda: reconciled(client, namespace), timeout=10)
    assert obj["metadata"]["generation"] == 2
    assert obj["status"]["entities"] == "gpt-4o=50%,claude=50%"
    cm = client.get(ConfigMap, CHILD, namespace=namespace)
    routes = yaml.safe_load((cm.data or {})[render.CONFIG_KEY])["spec"]["trafficConfig"]["routes"]
    assert [r["trafficPercentage"] for r in routes] == [50, 50]
    second_sum = checksum(client, namespace)
    assert second_sum != first_sum
    no_leak("update")

    # 5. rotate the referenced Secret -> a new pod-template checksum within 5 s
    put_secret(client, namespace, "openai-creds", {"api-key": rotated, "unused": "x"})
    t0 = time.monotonic()
    wait_for("a new checksum after rotation", lambda: checksum(client, namespace) != second_sum, timeout=5)
    assert time.monotonic() - t0 < 5
    wait_for("reconciled again after the rotation", lambda: reconciled(client, namespace), timeout=10)
    no_leak("rotate")

    # 6. delete -> every child and the owned Secret are gone (no garbage collector runs here)
    k8s.kubectl("delete", "servingendpoint", NAME, "-n", namespace, "--wait=false")

    def gone() -> bool:
        for kind, name in ((Deployment, CHILD), (Service, CHILD), (ConfigMap, CHILD), (Secret, OWNED),
                           (ServingEndpoint, NAME)):  # fmt: skip
            try:
                client.get(kind, name, namespace=namespace)
                return False
            except ApiError as e:
                if e.status.code != 404:
                    raise
        return True

    wait_for("children, owned Secret and endpoint deleted", gone, timeout=15)
    client.get(Secret, "openai-creds", namespace=namespace)  # the user's Secret stays

    no_leak("delete")
    events = k8s.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert "SecretNotFound" in reasons
    logs = operator.logs()
    assert "reconciled" in logs
    assert "inconsistencies" not in logs
    assert "Traceback" not in logs
    for line in logs.splitlines():
        if line.startswith("{"):
            json.loads(line)  # structured logs


def test_invalid_config_is_reported_and_nothing_deployed(
    k8s: DevCluster, namespace: str, operator: OperatorProcess, client: Client
) -> None:
    spec = {
        "servedEntities": [
            {"name": "e", "externalModel": {"name": "claude", "provider": "anthropic", "task": "llm/v1/embeddings",
                                            "anthropicConfig": {"anthropicApiKey": "{{secrets/a/k}}"}}}
        ]
    }  # fmt: skip
    apply_endpoint(k8s, namespace, spec)
    obj = wait_for("ConfigValid=False", lambda: ready(client, namespace, "False"), timeout=20)
    valid = condition(obj, "ConfigValid")
    assert valid is not None
    assert valid["status"] == "False"
    assert valid["reason"] == "InvalidConfig"
    assert "cannot serve task llm/v1/embeddings" in valid["message"]
    assert condition(obj, "Ready")["reason"] == "InvalidConfig"  # type: ignore[index]
    with pytest.raises(ApiError):
        client.get(ConfigMap, CHILD, namespace=namespace)


def test_unenforceable_guardrails_are_reported_without_failing(
    k8s: DevCluster, namespace: str, operator: OperatorProcess, client: Client
) -> None:
    """safety / validTopics without a judge model cannot be enforced: ConfigValid stays True, and says so; once a
    judge is named (aiGateway.guardrails.judge) the config is plainly valid (Ready from a real pod: tests/node)."""
    put_secret(client, namespace, "a", {"k": "key"})
    spec = {
        "servedEntities": [
            {"name": "e", "externalModel": {"name": "claude", "provider": "anthropic", "task": "llm/v1/chat",
                                            "anthropicConfig": {"anthropicApiKey": "{{secrets/a/k}}"}}}
        ],
        "aiGateway": {"guardrails": {"input": {"safety": True, "validTopics": ["billing"],
                                               "invalidKeywords": ["secret-project"]}}},
    }  # fmt: skip
    apply_endpoint(k8s, namespace, spec)
    obj = wait_for("reconciled", lambda: reconciled(client, namespace), timeout=20)
    valid = condition(obj, "ConfigValid")
    assert valid is not None
    assert (valid["status"], valid["reason"]) == ("True", "GuardrailsNotEnforced")
    assert "aiGateway.guardrails.input.safety" in valid["message"]
    assert "aiGateway.guardrails.input.validTopics" in valid["message"]
    assert "invalidKeywords" not in valid["message"]
    assert "failurePolicy" in valid["message"]

    spec["aiGateway"]["guardrails"]["judge"] = {"url": "http://llama-guard.safety:8000/v1", "model": "llama-guard-3",
                                                "apiKey": "{{secrets/a/k}}"}
    apply_endpoint(k8s, namespace, spec)
    def judged() -> dict[str, Any] | None:  # Ready stays Progressing here (no node): the config check is the point
        got = reconciled(client, namespace)
        return got if got and (condition(got, "ConfigValid") or {}).get("reason") == "ConfigValid" else None

    obj = wait_for("ConfigValid=True/ConfigValid, judged", judged, timeout=20)
    assert "not enforced" not in (condition(obj, "ConfigValid") or {})["message"].lower()
    assert (condition(obj, "Ready") or {})["reason"] == "Progressing"  # serving with it: tests/node


@pytest.mark.slow
def test_killed_during_100_reconciles_converges(
    k8s: DevCluster, namespace: str, operator: OperatorProcess, client: Client
) -> None:
    """20 endpoints x 5 spec versions, the operator SIGKILLed at random points while it reconciles, and restarted:
    every endpoint ends reconciled at its latest generation with exactly one set of children (owned Secrets included)."""
    import random

    rng = random.Random(1234)
    put_secret(client, namespace, "openai-creds", {"api-key": "sk-test"})
    names = [f"ep-{i:02d}" for i in range(20)]
    kill_at = set(rng.sample(range(100), 5))
    kills = 0
    unfinished: list[int] = []  # per kill: endpoints whose latest change was not reconciled yet
    started_at = 0  # offset in the operator's log where the running process started

    def reconciling() -> bool:
        return "reconciled " in operator.logs()[started_at:]

    for version in range(5):
        for i, name in enumerate(names):
            body = manifest(name, namespace, two_entities(plaintext=f"sk-{i}", split=10 * (version + 1)))
            client.patch(ServingEndpoint, name, body, namespace=namespace, patch_type=PatchType.APPLY, force=True)
            if version * 20 + i in kill_at:
                # Kill while reconciles are under way (not during the start-up before any): once the running
                # process has reconciled something, after a random delay within the next 0.3 s, when this
                # endpoint's (and its predecessors') reconciles are in flight.
                wait_for("the operator to be reconciling", reconciling, timeout=30, interval=0.02)
                time.sleep(rng.uniform(0.0, 0.3))
                kills += 1
                operator.kill()
                unfinished.append(sum(
                    1 for ep in client.list(ServingEndpoint, namespace=namespace)
                    if (ep.status or {}).get("observedGeneration") != ep.metadata.generation  # type: ignore[union-attr]
                ))  # fmt: skip
                time.sleep(rng.uniform(0.0, 0.5))
                started_at = len(operator.logs())
                operator.start()
        time.sleep(rng.random())

    def converged() -> bool:
        for name in names:
            obj = endpoint(client, namespace, name)
            if not settled(obj) or obj["status"].get("observedGeneration") != 5:
                return False
            if obj["status"]["entities"] != "gpt-4o=50%,claude=50%":
                return False
        return True

    assert kills == 5
    print(f"endpoints not reconciled yet at each kill: {unfinished}")
    assert sum(unfinished) > 0, "no kill interrupted work in progress"
    wait_for("all endpoints converged", converged, timeout=90, interval=0.5)
    for kind in (Deployment, Service, ConfigMap, Secret):
        children = list(client.list(kind, namespace=namespace, labels={"app.kubernetes.io/managed-by": "modelgate-operator",
                                                                       "app.kubernetes.io/component": "proxy"}))
        owners = sorted(c.metadata.labels[render.ENDPOINT_LABEL] for c in children)  # type: ignore[union-attr,index]
        assert owners == names, kind
    secrets = {s.metadata.name for s in client.list(Secret, namespace=namespace)}  # type: ignore[union-attr]
    assert secrets == {"openai-creds"} | {render.owned_secret_name(n) for n in names}
    for name in names:
        cm = client.get(ConfigMap, render.child_name(name), namespace=namespace)
        routes = yaml.safe_load((cm.data or {})[render.CONFIG_KEY])["spec"]["trafficConfig"]["routes"]
        assert [r["trafficPercentage"] for r in routes] == [50, 50]
