"""deploy/install.yaml, the single-file install: current with the chart, and `kubectl apply` of it runs an
operator (started from the Deployment in it, as its ServiceAccount) that reconciles a sample like Helm's does."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelgate_dev.devcluster import DevCluster

from .helmtool import REPO_ROOT, Helm, container, find, one, parse_docs
from .localpod import LocalPod
from .reconcile import NAME, assert_no_drift, get, reconcile_sample

INSTALL = REPO_ROOT / "deploy" / "install.yaml"


def test_install_manifest_is_current(helm: Helm) -> None:
    res = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "install-manifest.sh"), "--check"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "MODELGATE_K8S_BIN": str(helm.binary.parent)},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr


def test_install_manifest_contents() -> None:
    docs = parse_docs(INSTALL.read_text())
    assert docs[0]["kind"] == "Namespace"
    assert {d["metadata"]["name"] for d in find(docs, "CustomResourceDefinition")} >= {
        "servingendpoints.serving.modelgate.io"
    }
    assert container(one(docs, "Deployment"))["args"][1] == "--all-namespaces"
    assert all(d["metadata"].get("namespace") in (None, "modelgate-system") for d in docs)
    assert find(docs, "Role") == []  # cluster-wide: a ClusterRole instead
    assert one(docs, "ClusterRoleBinding", "modelgate-modelgate-system")["subjects"][0]["namespace"] == "modelgate-system"
    assert "subjects" not in one(docs, "ClusterRoleBinding", "modelgate-modelgate-system-proxy-reviews")  # the operator keeps them


@pytest.fixture
def endpoint_ns(k8s: DevCluster) -> Iterator[str]:
    name = f"mgk-{secrets.token_hex(3)}"
    k8s.kubectl("create", "namespace", name)
    yield name
    k8s.kubectl("delete", "servingendpoints", "--all", "-n", name, "--wait=false", "--ignore-not-found")
    k8s.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


def test_kubectl_apply_install_manifest(k8s: DevCluster, endpoint_ns: str, tmp_path: Path) -> None:
    applied = k8s.kubectl("apply", "--server-side", "-f", str(INSTALL), "-o", "name").stdout.split()
    assert "deployment.apps/modelgate" in applied
    assert "clusterrole.rbac.authorization.k8s.io/modelgate-modelgate-system" in applied
    docs = parse_docs(INSTALL.read_text())
    deployment = one(docs, "Deployment")
    assert get(k8s, "deployment", "modelgate", "modelgate-system") is not None
    try:
        with LocalPod(k8s, deployment, tmp_path / "operator.log") as pod:
            pod.wait_live()
            reconcile_sample(k8s, endpoint_ns, pod.logs)  # any namespace: the plain install is cluster-wide
            assert_no_drift(k8s, endpoint_ns)
            k8s.kubectl("delete", "servingendpoint", NAME, "-n", endpoint_ns, "--timeout=60s")
    finally:
        # remove what the manifest installed, except the CRDs the rest of the session shares
        rest = [f"{d['kind'].lower()}/{d['metadata']['name']}" for d in docs[1:] if d["kind"] != "CustomResourceDefinition"]
        k8s.kubectl("delete", "-n", "modelgate-system", "--ignore-not-found", "--wait=false", *rest)
