"""The operator under the OwnerReferencesPermissionEnforcement admission plugin (on by default on OpenShift).

The plugin lets a client set ``blockOwnerDeletion: true`` on an ownerReference only when it may ``update`` the
owner's ``finalizers`` subresource. The operator's children all carry such a reference to their ServingEndpoint,
so without ``servingendpoints/finalizers: update`` in its RBAC every apply is Forbidden. A control plane of its
own (about 3 s to start), since the session cluster runs without the plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Secret, Service

from modelgate_dev.devcluster import DevCluster, DevClusterError, KubectlError
from modelgate_operator import render
from tests.plugins.k8s import install_crds, namespace_name

from .harness import (
    REPO,
    OperatorProcess,
    admin_client,
    endpoint,
    install_rbac,
    put_secret,
    settled,
    wait_for,
)
from .samples import endpoint as manifest
from .samples import two_entities

PLUGIN = "OwnerReferencesPermissionEnforcement"
NAME = "owned"


@pytest.fixture(scope="module")
def strict_k8s(k8s_bin: Path) -> Iterator[DevCluster]:
    cluster = DevCluster(bin_dir=k8s_bin, extra_apiserver_args=[f"--enable-admission-plugins={PLUGIN}"])
    try:
        cluster.start()
    except DevClusterError as e:
        pytest.fail(f"could not start the dev cluster with {PLUGIN}:\n{e}", pytrace=False)
    try:
        install_crds(cluster, REPO / "crds")
        yield cluster
    finally:
        cluster.stop()


def _owned_config_map(namespace: str, uid: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "probe", "namespace": namespace,
                     "ownerReferences": render.owner_references(render.Owner(NAME, namespace, uid))},
    })  # fmt: skip


def test_children_are_created_when_owner_references_block_deletion(
    strict_k8s: DevCluster, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    k8s = strict_k8s
    namespace = namespace_name(request.node.name)
    k8s.kubectl("create", "namespace", namespace)
    client: Client = admin_client(k8s)
    try:
        kubeconfig = install_rbac(k8s, namespace)
        who = f"system:serviceaccount:{namespace}:modelgate-operator"
        can = k8s.kubectl("auth", "can-i", "update", "servingendpoints.serving.modelgate.io", "--subresource=finalizers",
                          "-n", namespace, f"--as={who}", check=False)  # fmt: skip
        assert can.stdout.strip() == "yes"

        put_secret(client, namespace, "openai-creds", {"api-key": "sk-ref"})
        k8s.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(manifest(NAME, namespace, two_entities())))
        uid = endpoint(client, namespace, NAME)["metadata"]["uid"]

        # The plugin is really on: an identity that may create ConfigMaps but not update the endpoint's
        # finalizers cannot set blockOwnerDeletion on a reference to it.
        k8s.kubectl("create", "role", "cm-only", "-n", namespace, "--verb=create,get,delete", "--resource=configmaps")
        k8s.kubectl("create", "rolebinding", "cm-only", "-n", namespace, "--role=cm-only", "--user=cm-only")
        limited = k8s.create_user_kubeconfig("cm-only")
        with pytest.raises(KubectlError, match="blockOwnerDeletion"):
            k8s.kubectl("create", "-f", "-", input=_owned_config_map(namespace, uid), kubeconfig=limited)

        with OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log", "--log-format", "json") as op:

            try:
                wait_for("every child applied", lambda: settled(endpoint(client, namespace, NAME)), timeout=30)
            finally:
                print(op.logs()[-4000:])
            child = render.child_name(NAME)
            for kind, name in ((Secret, render.owned_secret_name(NAME)), (ConfigMap, child), (Deployment, child),
                               (Service, child)):  # fmt: skip
                obj = client.get(kind, name, namespace=namespace)
                assert obj.metadata is not None
                refs = obj.metadata.ownerReferences or []
                assert [(r.uid, r.blockOwnerDeletion) for r in refs] == [(uid, True)], kind.__name__
            assert "forbidden" not in op.logs().lower()
    finally:  # the control plane goes with the module: nothing else to clean up
        client.close()
