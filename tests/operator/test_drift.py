"""Drift repair against the real API server: a child edited or deleted by hand is put back within seconds, and
the echoes of the operator's own writes cause no further reconciles."""

from __future__ import annotations

import time
from typing import Any

import yaml
from lightkube import ApiError, Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Secret, Service
from lightkube.types import PatchType

from modelgate_dev.devcluster import DevCluster
from modelgate_operator import render

from .harness import OperatorProcess, endpoint, put_secret, wait_for
from .harness import settled as reconciled
from .samples import endpoint as manifest
from .samples import two_entities

NAME = "drift"
CHILD = render.child_name(NAME)
OWNED = render.owned_secret_name(NAME)


def versions(client: Client, namespace: str) -> dict[str, str | None]:
    objs: list[Any] = [
        client.get(ConfigMap, CHILD, namespace=namespace),
        client.get(Deployment, CHILD, namespace=namespace),
        client.get(Service, CHILD, namespace=namespace),
        client.get(Secret, OWNED, namespace=namespace),
    ]
    return {type(o).__name__: o.metadata.resourceVersion for o in objs}


def reconciles(operator: OperatorProcess) -> int:
    return operator.logs().count(f"reconciled {operator.namespace}/{NAME} ")


def test_edited_or_deleted_children_are_put_back(
    k8s: DevCluster, namespace: str, operator: OperatorProcess, client: Client
) -> None:
    put_secret(client, namespace, "openai-creds", {"api-key": "sk-ref"})
    k8s.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(manifest(NAME, namespace, two_entities())))

    def ready() -> bool:  # the operator's part done (no Deployment controller here: the proxy waits for a rollout)
        return reconciled(endpoint(client, namespace, NAME)) is not None

    wait_for("reconciled", ready, timeout=20)
    config = (client.get(ConfigMap, CHILD, namespace=namespace).data or {})[render.CONFIG_KEY]

    # Quiet when nothing changes: the echoes of its own applies and status writes start no reconcile.
    time.sleep(1.0)
    settled, count = versions(client, namespace), reconciles(operator)
    time.sleep(2.0)
    assert versions(client, namespace) == settled
    assert reconciles(operator) == count

    # ConfigMap edited by hand -> its content is restored.
    client.patch(ConfigMap, CHILD, {"data": {render.CONFIG_KEY: "tampered: true\n"}}, namespace=namespace,
                 patch_type=PatchType.MERGE)  # fmt: skip
    wait_for(
        "ConfigMap restored",
        lambda: (client.get(ConfigMap, CHILD, namespace=namespace).data or {}).get(render.CONFIG_KEY) == config,
        timeout=5,
    )

    # Service deleted -> recreated.
    client.delete(Service, CHILD, namespace=namespace)

    def service_back() -> bool:
        try:
            svc = client.get(Service, CHILD, namespace=namespace)
        except ApiError:
            return False
        return bool(svc.metadata and svc.metadata.deletionTimestamp is None)

    wait_for("Service recreated", service_back, timeout=5)

    # Deployment edited (another image, more replicas) -> the rendered template is back.
    client.patch(Deployment, CHILD, {"spec": {"replicas": 5, "template": {"spec": {"containers": [
        {"name": "proxy", "image": "evil:latest"}]}}}}, namespace=namespace,
        patch_type=PatchType.STRATEGIC)  # fmt: skip

    def deployment_back() -> bool:
        dep = client.get(Deployment, CHILD, namespace=namespace)
        assert dep.spec is not None
        assert dep.spec.template.spec is not None
        return dep.spec.replicas == 1 and dep.spec.template.spec.containers[0].image == render.ProxyDefaults().image

    wait_for("Deployment restored", deployment_back, timeout=5)

    # The owned Secret edited -> its values are restored.
    owned = dict(client.get(Secret, OWNED, namespace=namespace).data or {})
    client.patch(Secret, OWNED, {"data": dict.fromkeys(owned, "dGFtcGVyZWQ=")}, namespace=namespace,
                 patch_type=PatchType.MERGE)  # fmt: skip
    wait_for("owned Secret restored", lambda: client.get(Secret, OWNED, namespace=namespace).data == owned, timeout=5)

    # The owned Secret deleted -> recreated with the plaintext key.
    client.delete(Secret, OWNED, namespace=namespace)

    def secret_back() -> bool:
        try:
            return bool(client.get(Secret, OWNED, namespace=namespace).data)
        except ApiError:
            return False

    wait_for("owned Secret recreated", secret_back, timeout=5)
    wait_for("reconciled again", ready, timeout=20)

    # And quiet again afterwards.
    time.sleep(1.0)
    settled, count = versions(client, namespace), reconciles(operator)
    time.sleep(2.0)
    assert versions(client, namespace) == settled
    assert reconciles(operator) == count
    logs = operator.logs()
    assert "ConfigMap of" in logs
    assert "Traceback" not in logs
