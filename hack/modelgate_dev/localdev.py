"""``make up`` / ``make down``: modelgate end to end on this machine, on a real single-node cluster.

``up`` (idempotent: a second run reuses whatever still runs):

1. installs/builds what is missing (Debian packages, the Kubernetes binaries, the images: :mod:`.node.prepare`);
2. starts the dev cluster with its real node (:mod:`.node.cluster`: etcd, kube-apiserver, containerd, kubelet,
   kube-controller-manager, kube-scheduler) with its state in ``<dir>``;
3. runs a local OpenAI-compatible provider (``hack/fake_openai.py``) with a generated key on the node's bridge
   address (pods reach it there; it is an address of this machine);
4. ``helm upgrade --install`` of ``charts/modelgate`` into ``modelgate-system`` (the operator runs as a pod from
   the image built here, watching every namespace);
5. applies a Secret with the provider key and the ServingEndpoint ``quickstart``, mints an API key (its Secret, with
   the key's hash only, and a RoleBinding of its principal to ``modelgate-query``: authentication is on by default,
   docs/authentication.md) kept in ``<dir>/api-key``, waits until the endpoint is Ready and its proxy pod answers,
   and sends one chat request with that key through that pod;
6. waits for the namespace's workspace gateway pod (every endpoint and the Databricks management API on one URL,
   docs/workspace-gateway.md), mints a token of a ServiceAccount that may query and manage (``<dir>/gateway-token``,
   :mod:`.quickstart_gateway`), sends the same chat through it and prints ``DATABRICKS_HOST`` / ``DATABRICKS_TOKEN``.

``down`` tears it all down and restores the host (``--purge`` also deletes ``<dir>``). Logs: ``<dir>/logs/``
(provider), ``<dir>/control-plane/logs/``, ``<dir>/node/logs/``; pods: ``kubectl logs``.

    python -m modelgate_dev.localdev up [--dir .dev]
    python -m modelgate_dev.localdev down [--dir .dev] [--purge]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from modelgate_operator import render
from modelgate_proxy.stages.identity.apikey_mint import mint

from . import quickstart_gateway
from .background import Background
from .devcluster import REPO_ROOT, DevCluster, DevClusterError, link_tools
from .node.cluster import NodeCluster
from .node.layout import GATEWAY
from .node.node import RELAY_PORT
from .node.prepare import prepare
from .node.procs import NodeError
from .pods import ready_pod_url

REPO = REPO_ROOT
CHART = REPO / "charts" / "modelgate"
RELEASE = "modelgate"
OPERATOR_NAMESPACE = "modelgate-system"
ENDPOINT = "quickstart"
ENDPOINT_NAMESPACE = "default"
KEY_SECRET = "quickstart-openai"
CALLER = "quickstart@example.com"
"""The principal of the API key ``make up`` mints (bound to query the endpoint)."""
FIELD_MANAGER = "modelgate-quickstart"


class LocalDevError(Exception):
    """``up`` could not bring something up; the message says what and where its log is."""


def quickstart_manifests(provider_url: str, key: str) -> list[dict[str, Any]]:
    """The provider-key Secret and the ``quickstart`` ServingEndpoint (OpenAI provider at ``provider_url``)."""
    return [
        {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": KEY_SECRET, "namespace": ENDPOINT_NAMESPACE},
            "stringData": {"api-key": key},
        },
        {
            "apiVersion": "serving.modelgate.io/v1alpha1", "kind": "ServingEndpoint",
            "metadata": {"name": ENDPOINT, "namespace": ENDPOINT_NAMESPACE},
            "spec": {
                "description": "make up: chat through the local OpenAI-compatible stand-in provider",
                "servedEntities": [{
                    "name": "gpt-4o-mini",
                    "externalModel": {
                        "name": "gpt-4o-mini", "provider": "openai", "task": "llm/v1/chat",
                        "openaiConfig": {"openaiApiBase": f"{provider_url}/v1",
                                         "openaiApiKey": f"{{{{secrets/{KEY_SECRET}/api-key}}}}"},
                    },
                }],
                # no spec.proxy.authentication: the default, bearer (Kubernetes tokens and this namespace's API
                # keys, checked by the proxy pod with TokenReview/SubjectAccessReview); the printed snippets send
                # the API key minted below
            },
        },
    ]  # fmt: skip


def caller_manifests(api_key_secret: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The API key's Secret and the RoleBinding that lets its principal query the namespace's endpoints."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "quickstart-query", "namespace": ENDPOINT_NAMESPACE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "modelgate-query"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": CALLER}],
    }  # fmt: skip
    return [dict(api_key_secret), binding]


def helm_values(nc: NodeCluster) -> dict[str, Any]:
    op_repo, op_tag = nc.node.images["operator"].ref.rsplit(":", 1)
    px_repo, px_tag = nc.node.images["proxy"].ref.rsplit(":", 1)
    return {
        "image": {"repository": op_repo, "tag": op_tag, "pullPolicy": "Never"},
        "proxy": {"image": {"repository": px_repo, "tag": px_tag, "pullPolicy": "Never"}},
        "watch": {"scope": "cluster"},
        "extraEnv": [{"name": k, "value": v} for k, v in nc.node.pod_api_env().items()],
        # proxy pods check callers with TokenReview/SubjectAccessReview: the API server through the node's relay
        "extraArgs": ["--proxy-api-server", f"https://{GATEWAY}:{RELAY_PORT}"],
    }


class LocalDev:
    def __init__(self, state_dir: Path, python: str = sys.executable) -> None:
        self.dir = state_dir.resolve()
        self.python = python
        self.provider = Background("fake-openai", self.dir)
        self.gateway_url = ""
        self.gateway_token = self.dir / "gateway-token"

    def node_cluster(self, bin_dir: Path) -> NodeCluster:
        if (self.dir / "control-plane" / "state.json").exists():
            try:
                existing = NodeCluster.attach(self.dir, bin_dir)
            except (DevClusterError, NodeError):
                existing = None
            if existing is not None and existing.running():
                say("cluster: already running")
                existing.node.refresh_images()
                return existing
            if existing is not None:
                say("cluster: tearing down a half-dead one first")
                existing.stop()
        nc = NodeCluster(self.dir, bin_dir, detached=True).start()
        link_tools(nc.cluster)
        return nc

    def api_key(self, cluster: DevCluster) -> str:
        """The caller's API key (``<dir>/api-key``, minted on first use); its Secret and RoleBinding are applied
        each time (idempotent)."""
        path = self.dir / "api-key"
        if not path.exists():
            minted = mint(CALLER, namespace=ENDPOINT_NAMESPACE)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(minted.key + "\n")
            (self.dir / "api-key-secret.yaml").write_text(yaml.safe_dump(minted.manifest, sort_keys=False))
        self.apply(cluster, caller_manifests(yaml.safe_load((self.dir / "api-key-secret.yaml").read_text())))
        return path.read_text().strip()

    def provider_key(self) -> str:
        path = self.dir / "fake-openai.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(f"sk-local-{secrets.token_hex(16)}\n")
        return path.read_text().strip()

    def start_provider(self, nc: NodeCluster) -> str:
        """The stand-in on the node's bridge address (restarted with each new node: the bridge is new)."""
        key = self.provider_key()
        port = self.provider.record().get("port")
        if self.provider.alive() and isinstance(port, int) and _answers(str(GATEWAY), port):
            say("provider stand-in: already running")
            return f"http://{GATEWAY}:{port}"
        self.provider.stop()
        port = _free_port()
        argv = [self.python, str(REPO / "hack" / "fake_openai.py"), "--host", str(GATEWAY), "--port", str(port)]
        env = {**nc.cluster.env(), "PYTHONPATH": os.pathsep.join(str(REPO / d) for d in ("proxy", "operator", "hack")),
               "MODELGATE_FAKE_OPENAI_KEY": key}  # fmt: skip
        self.provider.start(argv, env, port=port)
        deadline = time.monotonic() + 20
        while not _answers(str(GATEWAY), port):
            if not self.provider.alive() or time.monotonic() > deadline:
                raise LocalDevError(f"provider stand-in did not listen; {self.provider.log_path}:\n"
                                    f"{self.provider.log_tail()}")  # fmt: skip
            time.sleep(0.1)
        say(f"provider stand-in: OpenAI-compatible API on http://{GATEWAY}:{port}/v1")
        return f"http://{GATEWAY}:{port}"

    def install_operator(self, nc: NodeCluster) -> None:
        values = self.dir / "helm-values.yaml"
        values.write_text(yaml.safe_dump(helm_values(nc), sort_keys=False))
        env = {**nc.cluster.env(), **{f"HELM_{k}_HOME": str(self.dir / "helm" / k.lower())
                                      for k in ("CACHE", "CONFIG", "DATA")}}  # fmt: skip
        started = time.monotonic()
        cmd = [str(nc.cluster.bin_dir / "helm"), "upgrade", "--install", RELEASE, str(CHART), "-n",
               OPERATOR_NAMESPACE, "--create-namespace", "-f", str(values), "--wait", "--timeout", "180s"]  # fmt: skip
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
        if res.returncode != 0:
            raise LocalDevError(f"helm upgrade --install failed:\n{res.stderr[-3000:]}")
        say(f"operator: helm release {RELEASE} in {OPERATOR_NAMESPACE}, pod Ready "
            f"({time.monotonic() - started:.1f}s)")  # fmt: skip

    def apply(self, cluster: DevCluster, docs: Sequence[Mapping[str, Any]]) -> None:
        text = yaml.safe_dump_all([dict(d) for d in docs], sort_keys=False)
        cluster.kubectl("apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}",
                        "-f", "-", input=text)  # fmt: skip

    def wait_ready(self, cluster: DevCluster, timeout: float = 120.0) -> str:
        """Ready=True and the proxy pod answers /readyz; returns the pod's base URL."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            got = cluster.kubectl("get", "servingendpoint", ENDPOINT, "-n", ENDPOINT_NAMESPACE, "-o", "json",
                                  check=False)  # fmt: skip
            if got.returncode == 0:
                obj: dict[str, Any] = json.loads(got.stdout)
                for cond in (obj.get("status") or {}).get("conditions") or []:
                    if cond.get("type") == "Ready":
                        last = f"Ready={cond.get('status')} ({cond.get('reason')}: {cond.get('message')})"
                        url = self.pod_url(cluster)
                        if cond.get("status") == "True" and url and _answers_url(f"{url}/readyz"):
                            return url
            time.sleep(0.25)
        raise LocalDevError(f"ServingEndpoint {ENDPOINT} not Ready after {timeout:.0f}s ({last or 'no status yet'});"
                            f" see kubectl logs -n {OPERATOR_NAMESPACE} deploy/{RELEASE}")  # fmt: skip

    @staticmethod
    def pod_url(cluster: DevCluster) -> str:
        """A Ready, not terminating proxy pod of the endpoint."""
        return ready_pod_url(cluster, ENDPOINT_NAMESPACE, f"{render.ENDPOINT_LABEL}={ENDPOINT}", render.PROXY_PORT)

    def up(self) -> str:
        """Bring everything up; returns the proxy pod's base URL."""
        say("preparing (first time: Debian packages, Kubernetes binaries, images; cached after)")
        bin_dir = prepare()
        nc = self.node_cluster(bin_dir)
        crds = nc.cluster.install_crds(REPO / "crds")
        say(f"CRD: {', '.join(crds)} Established")
        provider_url = self.start_provider(nc)
        self.install_operator(nc)
        docs = quickstart_manifests(provider_url, self.provider_key())
        (self.dir / "quickstart.yaml").write_text(yaml.safe_dump(docs[1], sort_keys=False))  # no key in it
        self.apply(nc.cluster, docs)
        self.api_key(nc.cluster)
        say(f"applied Secret {KEY_SECRET}, ServingEndpoint {ENDPOINT}, an API key for {CALLER} and its RoleBinding "
            f"in namespace {ENDPOINT_NAMESPACE} (the key: {self.dir / 'api-key'})")
        started = time.monotonic()
        url = self.wait_ready(nc.cluster)
        say(f"ServingEndpoint {ENDPOINT}: Ready, proxy pod answering at {url} ({time.monotonic() - started:.1f}s)")
        got = nc.cluster.kubectl("get", "servingendpoint", ENDPOINT, "-n", ENDPOINT_NAMESPACE, "-o", "json")
        auth = (json.loads(got.stdout).get("status") or {}).get("authentication") or {}
        say(f"authentication: mode {auth.get('mode')}, open: {str(auth.get('open')).lower()}, API keys: "
            f"{str(auth.get('apiKeys')).lower()} (status.authentication)")  # fmt: skip
        self.apply(nc.cluster, quickstart_gateway.caller_manifests(ENDPOINT_NAMESPACE, KEY_SECRET))
        started = time.monotonic()
        self.gateway_url = quickstart_gateway.wait_gateway(nc.cluster, ENDPOINT_NAMESPACE)
        quickstart_gateway.mint_token(nc.cluster, ENDPOINT_NAMESPACE, self.gateway_token)
        say(f"workspace gateway of namespace {ENDPOINT_NAMESPACE}: pod answering at {self.gateway_url} "
            f"({time.monotonic() - started:.1f}s); a token of ServiceAccount {quickstart_gateway.SERVICE_ACCOUNT} "
            f"(may query and manage) in {self.gateway_token}")  # fmt: skip
        return url

    def down(self, purge: bool = False) -> None:
        if self.provider.stop():
            say("provider stand-in: stopped")
        if (self.dir / "control-plane" / "state.json").exists():
            bin_dir = Path(json.loads((self.dir / "control-plane" / "state.json").read_text()).get("bin_dir") or ".")
            try:
                nc = NodeCluster.attach(self.dir, bin_dir)
            except (DevClusterError, NodeError) as e:
                say(f"cluster: nothing to attach to ({e})")
            else:
                done = nc.stop()
                say(f"cluster: node torn down ({len(done)} steps), control plane stopped")
                left = nc.node.leftovers()
                say("host restored" if not left else f"left on the host: {'; '.join(left)}")
        if purge:
            shutil.rmtree(self.dir, ignore_errors=True)
            say(f"deleted {self.dir}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((str(GATEWAY), 0))
        return int(s.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _answers_url(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # in-machine address: no proxy
    try:
        with opener.open(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def chat(base_url: str, text: str, api_key: str, timeout: float = 30.0) -> str:
    """One chat request with ``api_key`` through the proxy pod's Databricks route; returns the answer's text."""
    req = urllib.request.Request(  # noqa: S310 - a URL we built (a pod of this machine's node)
        f"{base_url}/serving-endpoints/{ENDPOINT}/invocations",
        data=json.dumps({"messages": [{"role": "user", "content": text}], "max_tokens": 64}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=timeout) as resp:
        body = json.loads(resp.read())
    return str(body["choices"][0]["message"]["content"])


def say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def python_for_snippets(executable: str = sys.executable) -> str:
    """The interpreter to print in the usage snippets: the repository's venv (which has the openai package; the
    system Python usually has not), relative to the repository when it is inside it."""
    path = Path(executable)
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def usage(state_dir: Path, url: str, python: str | None = None) -> str:
    body = '{"messages": [{"role": "user", "content": "Hello"}]}'
    python = python or python_for_snippets()
    kc = state_dir / "control-plane" / "kubeconfig"
    key = state_dir / "api-key"
    return f"""
modelgate is running on a local single-node cluster. Point kubectl at it:
  export KUBECONFIG={kc} PATH={state_dir / "control-plane" / "bin"}:$PATH
  kubectl get servingendpoints -A          # short name: se
  kubectl get pods -A -o wide              # the operator pod and the proxy pod
  kubectl describe se {ENDPOINT}

Query the endpoint through its proxy pod (no kube-proxy: the pod's IP, on this machine's node bridge), with the
API key make up minted for {CALLER} (a query without a key is a 401):
  curl -s {url}/serving-endpoints/{ENDPOINT}/invocations -H 'Content-Type: application/json' \\
       -H "Authorization: Bearer $(cat {key})" -d '{body}'
  MODELGATE_API_KEY=$(cat {key}) {python} - <<'PY'   # from the repository: its venv has the openai package
import os
from openai import OpenAI
client = OpenAI(base_url="{url}/serving-endpoints", api_key=os.environ["MODELGATE_API_KEY"])
print(client.chat.completions.create(model="{ENDPOINT}", messages=[{{"role": "user", "content": "Hello"}}])
      .choices[0].message.content)
PY

Edit it with `kubectl edit se {ENDPOINT}` (or {state_dir}/quickstart.yaml + kubectl apply): the operator
re-renders and the Deployment rolls the proxy pod. Other samples: samples/*.yaml (each says which Secret it
needs; real providers are not reachable from here).
Logs: kubectl logs -n {OPERATOR_NAMESPACE} deploy/{RELEASE}; {state_dir}/node/logs/ (kubelet, containerd, ...);
      {state_dir}/control-plane/logs/ (etcd, kube-apiserver); {state_dir}/logs/fake-openai.log
Stop: make down        (bash hack/down.sh --purge also deletes {state_dir})"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelgate_dev.localdev", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="cmd", required=True)
    for cmd in ("up", "down"):
        p = sub.add_parser(cmd)
        p.add_argument("--dir", default=".dev", type=Path, help="state directory (default: .dev)")
        if cmd == "down":
            p.add_argument("--purge", action="store_true", help="also delete the state directory")
    args = parser.parse_args(argv)
    dev = LocalDev(args.dir)
    if args.cmd == "down":
        dev.down(purge=args.purge)
        return 0
    try:
        url = dev.up()
        question = "Hello from make up!"
        answer = chat(url, question, (dev.dir / "api-key").read_text().strip())
    except (LocalDevError, DevClusterError, NodeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    say(f"chat through the proxy pod: {question!r} -> {answer!r}")
    try:
        via = chat(dev.gateway_url, question, dev.gateway_token.read_text().strip())
    except (LocalDevError, OSError) as exc:
        print(f"error: the workspace gateway did not answer: {exc}", file=sys.stderr)
        return 1
    say(f"chat through the workspace gateway: {question!r} -> {via!r}")
    print()
    print(DevCluster.attach(dev.dir / "control-plane").kubectl("get", "servingendpoints", "-A").stdout.rstrip())
    print(usage(dev.dir, url))
    print(quickstart_gateway.usage(dev.gateway_url, dev.gateway_token, ENDPOINT, python_for_snippets()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
