"""Running the operator against the dev cluster the way it runs in production: its own process, its own
least-privilege identity (a client certificate for ``system:serviceaccount:<ns>:modelgate-operator`` bound to
``operator/config/rbac``), JSON logs captured to a file.

There is no kubelet or controller-manager here, and nothing pretends there is: a proxy Deployment never rolls
out, so an endpoint whose own work is done shows ``ProxyAvailable=False`` (reason ``Progressing``) and
``Ready=False`` (:func:`settled`). What needs a rollout or a running proxy runs on the real node (``tests/node``).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml
from lightkube import ApiError, Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.resources.core_v1 import Secret
from lightkube.resources.rbac_authorization_v1 import ClusterRoleBinding
from lightkube.types import PatchType

from modelgate_dev.devcluster import DevCluster
from modelgate_operator import render_auth
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
    install_reviews_binding(k8s, namespace)
    user = f"system:serviceaccount:{namespace}:modelgate-operator"
    return k8s.create_user_kubeconfig(user, ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"])


def install_reviews_binding(k8s: DevCluster, namespace: str) -> None:
    """operator/config/rbac/reviews_binding.yaml: the proxy-reviews ClusterRole and binding (shared by the session's
    tests: created once, never re-applied, so no test resets the subjects another test's operator added), and the
    operator's right to keep that binding's subjects (under a name of this namespace)."""
    gateway_role = (RBAC_DIR / "gateway_cluster_role.yaml").read_text()  # shared too: the gateways' ClusterRole
    k8s.kubectl("create", "-f", "-", input=gateway_role, check=False)
    for doc in yaml.safe_load_all((RBAC_DIR / "reviews_binding.yaml").read_text()):
        if doc["metadata"]["name"] == "modelgate-proxy-reviews":
            k8s.kubectl("create", "-f", "-", input=yaml.safe_dump(doc), check=False)
            continue
        doc["metadata"]["name"] = f"modelgate-operator-reviews-binding-{namespace}"
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = doc["metadata"]["name"]
            doc["subjects"][0]["namespace"] = namespace
        k8s.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))


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
        if self.proc is not None:
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


def settled(obj: dict[str, Any]) -> dict[str, Any] | None:
    """``obj`` if the operator has done its part at the current generation on the control plane alone: config
    valid, Secrets resolved, children applied, and the proxy waiting for a rollout that only a Deployment controller
    and a kubelet can make (``ProxyAvailable=False``/``Progressing``, so ``Ready=False``); else None."""
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"]["generation"]:
        return None
    want = {"ConfigValid": "True", "SecretsResolved": "True", "ChildrenApplied": "True", "ProxyAvailable": "False"}
    for ctype, value in want.items():
        cond = condition(obj, ctype)
        if cond is None or cond["status"] != value or cond["observedGeneration"] != obj["metadata"]["generation"]:
            return None
    if (condition(obj, "ProxyAvailable") or {}).get("reason") != "Progressing":
        return None
    return obj


def encoded_forms(value: str) -> dict[str, str]:
    """``value`` and what it looks like base64-encoded (standard and URL-safe alphabets), alone or anywhere inside
    a longer encoded text: for each of the three byte alignments, the characters that depend on ``value``'s bytes
    only. Form -> a label for messages."""
    raw = value.encode()
    forms = {value: "raw"}
    for k in range(3):
        for label, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            text = encode(b"\0" * k + raw).decode()
            forms.setdefault(text[-(-8 * k // 6) : 8 * (k + len(raw)) // 6], label)
    return forms


def cluster_texts(k8s: DevCluster, namespace: str, endpoint_name: str) -> dict[str, str]:
    """Where a credential must never show up, as text: ConfigMaps, Deployments, Services and Events of the namespace,
    and the endpoint's status (its spec may hold a ``*Plaintext`` value: that is the user's input). Secrets are not
    included (the owned Secret holds the plaintext values: that is its job)."""
    texts = {
        kind: k8s.kubectl("get", kind, "-n", namespace, "-o", "json", "--show-managed-fields").stdout
        for kind in ("configmaps", "deployments", "services", "events")
    }
    got = k8s.kubectl("get", "servingendpoint", endpoint_name, "-n", namespace, "-o", "json", check=False)
    if got.returncode == 0:
        texts["endpoint status"] = json.dumps(json.loads(got.stdout).get("status"))
    return texts


def assert_no_leak(phase: str, sentinels: Sequence[str], texts: Mapping[str, str]) -> None:
    """No sentinel credential, raw or base64-encoded, in any of ``texts`` (where -> text)."""
    for value in sentinels:
        for form, label in encoded_forms(value).items():
            for where, text in texts.items():
                assert form not in text, f"after {phase}: a credential ({label}) leaked into {where}"


def put_secret(client: Client, namespace: str, name: str, data: dict[str, str]) -> None:
    body = {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }  # fmt: skip
    client.patch(Secret, name, body, namespace=namespace, patch_type=PatchType.APPLY, force=True)


def can_as_service_account(k8s: DevCluster, namespace: str, account: str, *args: str) -> bool:
    """``kubectl auth can-i ARGS`` as ServiceAccount ``account`` of ``namespace`` (with its groups)."""
    who = f"system:serviceaccount:{namespace}:{account}"
    res = k8s.kubectl("auth", "can-i", *args, f"--as={who}", "--as-group=system:serviceaccounts",
                      f"--as-group=system:serviceaccounts:{namespace}", check=False)  # fmt: skip
    return res.stdout.strip() == "yes"


def reviews_subjects(client: Client) -> list[tuple[str, str]]:
    """The ServiceAccounts (namespace, name) of the one proxy-reviews ClusterRoleBinding."""
    crb = client.get(ClusterRoleBinding, render_auth.REVIEWS_CLUSTER_ROLE)
    return [(s.namespace or "", s.name) for s in crb.subjects or [] if s.kind == "ServiceAccount"]
