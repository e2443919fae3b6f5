"""The dev control plane is a real kube-apiserver: storage, RBAC, CRDs, clean shutdown."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelgate_dev.devcluster import DevCluster, pid_alive

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.devcluster.test.modelgate.dev}
spec:
  group: devcluster.test.modelgate.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - {rule: "self.replicas <= 3", message: "at most 3 replicas"}
            properties:
              replicas: {type: integer}
"""


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_configmap_round_trip(k8s: DevCluster, namespace: str) -> None:
    k8s.kubectl("create", "configmap", "greeting", "-n", namespace, "--from-literal=hello=world")
    got = k8s.kubectl("get", "configmap", "greeting", "-n", namespace, "-o", "json").stdout
    assert json.loads(got)["data"] == {"hello": "world"}
    assert k8s.kubectl("get", "namespace", namespace, "-o", "jsonpath={.status.phase}").stdout == "Active"


def test_non_admin_user_is_subject_to_rbac(k8s: DevCluster, namespace: str) -> None:
    alice = k8s.create_user_kubeconfig("alice", ["modelgate:testers"])
    for scope in (["-n", namespace], ["--all-namespaces"]):
        denied = k8s.kubectl("get", "secrets", *scope, kubeconfig=alice, check=False)
        assert denied.returncode != 0
        assert "Forbidden" in denied.stderr
        assert 'User "alice" cannot list resource "secrets"' in denied.stderr

    k8s.kubectl("create", "role", "cm-reader", "--verb=get,list", "--resource=configmaps", "-n", namespace)
    k8s.kubectl("create", "rolebinding", "cm-reader", "--role=cm-reader", "--group=modelgate:testers", "-n", namespace)
    _eventually(lambda: k8s.kubectl("get", "cm", "-n", namespace, kubeconfig=alice, check=False).returncode == 0)
    can_i = k8s.kubectl("auth", "can-i", "list", "secrets", "-n", namespace, kubeconfig=alice, check=False)
    assert can_i.stdout.strip() == "no"
    assert k8s.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}", kubeconfig=alice).stdout == (
        '["modelgate:testers","system:authenticated"]'
    )


def test_crd_schema_and_cel_are_enforced(k8s: DevCluster, namespace: str) -> None:
    k8s.kubectl("apply", "--server-side", "-f", "-", input=WIDGET_CRD)
    k8s.kubectl("wait", "--for=condition=Established", "crd/widgets.devcluster.test.modelgate.dev")
    widget = "apiVersion: devcluster.test.modelgate.dev/v1\nkind: Widget\nmetadata: {name: w}\nspec: {replicas: %d}\n"
    bad = k8s.kubectl("apply", "-n", namespace, "-f", "-", input=widget % 5, check=False)
    assert bad.returncode != 0
    assert "at most 3 replicas" in bad.stderr
    k8s.kubectl("apply", "-n", namespace, "-f", "-", input=widget % 2)
    # the namespace fixture deletes this CR afterwards


@pytest.mark.k8s
def test_stop_leaves_no_process_or_files_behind(k8s_bin: Path) -> None:
    with DevCluster(bin_dir=k8s_bin) as cluster:
        pids, state_dir, port = cluster.pids, cluster.dir, cluster.ports["apiserver"]
        assert set(pids) == {"etcd", "kube-apiserver"}
        assert all(pid_alive(pid) for pid in pids.values())
        assert cluster.kubeconfig.is_file()
    assert not any(pid_alive(pid) for pid in pids.values())
    assert not any(_group_members(pid) for pid in pids.values())
    assert not state_dir.exists()
    assert not _port_in_use(port)


@pytest.fixture
def dev_dir(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "dev"
    yield state
    subprocess.run([sys.executable, "-m", "modelgate_dev.devcluster", "down", "--dir", str(state)], check=False)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "modelgate_dev.devcluster", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.k8s
def test_cli_up_down_persists_state(k8s_bin: Path, dev_dir: Path) -> None:
    up = _cli("up", "--dir", str(dev_dir))
    assert up.returncode == 0, up.stderr
    assert f"export KUBECONFIG={dev_dir / 'kubeconfig'}" in up.stdout
    state = json.loads((dev_dir / "state.json").read_text())
    assert all(pid_alive(pid) for pid in state["pids"].values())
    assert (dev_dir / ".gitignore").read_text() == "*\n"

    cluster = DevCluster.attach(dev_dir)
    assert cluster.running()
    cluster.kubectl("create", "configmap", "survivor", "--from-literal=k=v")
    assert _cli("up", "--dir", str(dev_dir)).stdout.startswith("already running")

    assert _cli("down", "--dir", str(dev_dir)).returncode == 0
    assert not any(pid_alive(pid) for pid in state["pids"].values())
    assert _cli("status", "--dir", str(dev_dir)).returncode == 1

    assert _cli("up", "--dir", str(dev_dir)).returncode == 0
    again = DevCluster.attach(dev_dir)
    assert again.ports == cluster.ports  # same URL, so existing kubeconfigs keep working
    assert again.kubectl("get", "configmap", "survivor", "-o", "jsonpath={.data.k}").stdout == "v"

    assert _cli("down", "--dir", str(dev_dir), "--purge").returncode == 0
    assert not dev_dir.exists()
    assert not any(pid_alive(pid) for pid in again.pids.values())
