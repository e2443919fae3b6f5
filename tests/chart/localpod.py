"""Play the kubelet for the operator Deployment the chart rendered: run its container's command and args as a
local process, with its env, under the identity of its ServiceAccount (a client certificate for
``system:serviceaccount:<ns>:<sa>``, so only the RBAC the chart rendered applies).

The container command resolves to this virtualenv's console script, the one the image's ENTRYPOINT names.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from modelgate_dev.devcluster import DevCluster

from .helmtool import REPO_ROOT, container

VENV_BIN = Path(sys.executable).parent


def service_account_kubeconfig(k8s: DevCluster, namespace: str, name: str) -> Path:
    user = f"system:serviceaccount:{namespace}:{name}"
    assert len(user) <= 64, f"{user!r} is too long for a certificate CN: use a shorter namespace/release"
    return k8s.create_user_kubeconfig(user, ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"])


def container_env(deployment: dict[str, Any], pod_name: str) -> dict[str, str]:
    meta = {"metadata.name": pod_name, "metadata.namespace": deployment["metadata"]["namespace"]}
    env: dict[str, str] = {}
    for var in container(deployment).get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
        elif "fieldRef" in var.get("valueFrom", {}):
            env[var["name"]] = meta[var["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            raise AssertionError(f"the local kubelet cannot resolve env {var}")
    return env


def container_argv(deployment: dict[str, Any]) -> list[str]:
    c = container(deployment)
    command = list(c["command"])
    executable = VENV_BIN / command[0]
    assert executable.exists(), f"{command[0]} is not installed in {VENV_BIN} (pip install -e .[dev])"
    return [str(executable), *command[1:], *c.get("args", [])]


class LocalPod:
    def __init__(self, k8s: DevCluster, deployment: dict[str, Any], log_path: Path) -> None:
        spec = deployment["spec"]["template"]["spec"]
        self.namespace = deployment["metadata"]["namespace"]
        self.kubeconfig = service_account_kubeconfig(k8s, self.namespace, spec["serviceAccountName"])
        self.argv = container_argv(deployment)
        self.env = container_env(deployment, f"{deployment['metadata']['name']}-local")
        self.liveness_port = next(
            p["containerPort"] for p in container(deployment)["ports"] if p["name"] == "liveness"
        )
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalPod:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("KUBE")},
            **self.env,
            "KUBECONFIG": str(self.kubeconfig),
        }
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        return self

    def wait_live(self, timeout: float = 30.0) -> None:
        """The Deployment's livenessProbe, as the kubelet would run it."""
        url = f"http://127.0.0.1:{self.liveness_port}/healthz"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            assert self.proc.poll() is None, f"operator exited {self.proc.returncode}:\n{self.logs()[-3000:]}"
            try:
                with opener.open(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"liveness probe {url} never answered:\n{self.logs()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> LocalPod:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
