"""Running the operator against the dev cluster the way it runs in production: its own process, its own
least-privilege identity (a client certificate for ``system:serviceaccount:<ns>:modelgate-operator`` bound to
``operator/config/rbac``), JSON logs captured to a file.

There is no kubelet or controller-manager, so :class:`FakeDeploymentController` plays the Deployment
controller's part: it marks each Deployment's current generation as rolled out and available (that is what
drives ProxyAvailable).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml
from lightkube import ApiError, Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.resources.apps_v1 import Deployment
from lightkube.types import PatchType

from modelgate_operator.devcluster import DevCluster
from modelgate_operator.kube import ServingEndpoint

REPO = Path(__file__).resolve().parents[2]
RBAC_DIR = REPO / "operator" / "config" / "rbac"
T = TypeVar("T")


def install_rbac(k8s: DevCluster, namespace: str) -> Path:
    """ServiceAccount + Role + RoleBinding in ``namespace``; returns a kubeconfig for that identity."""
    for name in ("service_account.yaml", "role.yaml", "role_binding.yaml"):
        doc = yaml.safe_load((RBAC_DIR / name).read_text())
        doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
        k8s.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    user = f"system:serviceaccount:{namespace}:modelgate-operator"
    return k8s.create_user_kubeconfig(user, ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"])


def admin_client(k8s: DevCluster) -> Client:
    return Client(KubeConfig.from_file(k8s.kubeconfig), field_manager="test-admin")


class OperatorProcess:
    """``modelgate-operator run -n <ns>`` as a subprocess under the given kubeconfig."""

    def __init__(self, kubeconfig: Path, namespace: str, log_path: Path, *extra: str) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_path = log_path
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": os.pathsep.join([str(REPO / "proxy"), str(REPO / "operator")]),
        }
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelgate_operator.cli", "run", "-n", self.namespace, *self.extra],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
        )  # fmt: skip
        log.close()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class FakeDeploymentController(threading.Thread):
    """Marks every Deployment in the namespace as fully rolled out (status subresource), like the real one."""

    def __init__(self, client: Client, namespace: str, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.namespace = namespace
        self.interval = interval
        self.enabled = threading.Event()
        self.enabled.set()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            if not self.enabled.is_set():
                continue
            try:
                for dep in self.client.list(Deployment, namespace=self.namespace):
                    gen = dep.metadata.generation if dep.metadata else None
                    observed = dep.status.observedGeneration if dep.status else None
                    if gen is None or observed == gen or dep.metadata is None or dep.metadata.deletionTimestamp:
                        continue
                    replicas = dep.spec.replicas if dep.spec and dep.spec.replicas is not None else 1
                    self.client.patch(
                        Deployment.Status, dep.metadata.name or "", {"status": {
                            "observedGeneration": gen, "replicas": replicas, "updatedReplicas": replicas,
                            "readyReplicas": replicas, "availableReplicas": replicas,
                        }}, namespace=self.namespace, patch_type=PatchType.MERGE,
                    )  # fmt: skip
            except ApiError:
                pass

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.1) -> T:
    """Poll until ``fn`` returns something truthy; fail with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except ApiError:
            last = None
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def endpoint(client: Client, namespace: str, name: str) -> dict[str, Any]:
    obj = client.get(ServingEndpoint, name, namespace=namespace)
    return dict(obj.to_dict())


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == ctype:
            return dict(cond)
    return None


def materialize_pod(client: Client, namespace: str, deployment: str, root: Path, port: int) -> list[str]:
    """Play the kubelet for the proxy: write the Deployment's ConfigMap/Secret volumes under ``root`` exactly as
    mounted (Secret volumes: one file per projected key) and return its container command, rewritten to run
    here (``python -m modelgate_proxy``, paths under ``root``, 127.0.0.1:<port>)."""
    import base64

    from lightkube.resources.core_v1 import ConfigMap, Secret

    dep = client.get(Deployment, deployment, namespace=namespace)
    assert dep.spec is not None
    assert dep.spec.template.spec is not None
    pod = dep.spec.template.spec
    (container,) = pod.containers
    volumes = {v.name: v for v in pod.volumes or []}
    for mount in container.volumeMounts or []:
        vol = volumes[mount.name]
        target = root / mount.mountPath.lstrip("/")
        if vol.configMap is not None:
            cm = client.get(ConfigMap, vol.configMap.name or "", namespace=namespace)
            assert mount.subPath is not None
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text((cm.data or {})[mount.subPath])
        elif vol.secret is not None:
            secret = client.get(Secret, vol.secret.secretName or "", namespace=namespace)
            target.mkdir(parents=True, exist_ok=True)
            for item in vol.secret.items or []:
                (target / item.path).write_bytes(base64.b64decode((secret.data or {})[item.key]))
        else:
            target.mkdir(parents=True, exist_ok=True)
    command = list(container.command or [])
    assert command[0] == "modelgate"
    out = [sys.executable, "-m", "modelgate_proxy"]
    args = iter(command[1:])
    for arg in args:
        if arg in ("-f", "--secrets-dir"):
            out += [arg, str(root / next(args).lstrip("/"))]
        elif arg == "--host":
            out += [arg, "127.0.0.1"]
            next(args)
        elif arg == "--port":
            out += [arg, str(port)]
            next(args)
        else:
            out.append(arg)
    return out
