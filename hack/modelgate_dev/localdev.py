"""``make up`` / ``make down``: modelgate end to end on this machine, with no cluster and no provider account.

``up`` (idempotent: a second run reuses whatever still runs):

1. starts the local control plane (etcd + kube-apiserver, :mod:`.devcluster`) with its state in ``<dir>``;
2. installs the CRD, and the operator's ServiceAccount with its cluster-wide RBAC (``operator/config/rbac``);
3. runs the operator (``modelgate-operator run --all-namespaces``) in the background as that ServiceAccount
   (a client certificate for ``system:serviceaccount:modelgate-system:modelgate-operator``);
4. runs a local OpenAI-compatible provider (``hack/fake_openai.py``) with a generated key;
5. runs the local kubelet (:mod:`.localkubelet`), which runs each rendered proxy Deployment as a local process
   with the rendered ConfigMap and Secret files, and reports the rollout on the Deployment's status;
6. applies a Secret with the provider key and the ServingEndpoint ``quickstart`` (provider ``openai``, base URL
   = the local provider, key = a ``{{secrets/quickstart-openai/api-key}}`` reference), waits for Ready, and
   sends one chat request through the proxy the operator configured.

``down`` stops all of it (``--purge`` also deletes ``<dir>``). Logs: ``<dir>/logs/``; pods: ``<dir>/pods/``.

    python -m modelgate_dev.localdev up [--dir .dev]
    python -m modelgate_dev.localdev down [--dir .dev] [--purge]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelgate_operator import render

from . import devcluster, localkubelet
from .devcluster import DevCluster, DevClusterError

REPO = devcluster.REPO_ROOT
RBAC_DIR = REPO / "operator" / "config" / "rbac"
OPERATOR_NAMESPACE = "modelgate-system"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:modelgate-operator"
ENDPOINT = "quickstart"
ENDPOINT_NAMESPACE = "default"
KEY_SECRET = "quickstart-openai"
FIELD_MANAGER = "modelgate-quickstart"


class LocalDevError(Exception):
    """``up`` could not bring something up; the message says what and where its log is."""


# ----------------------------------------------------------------------------------------------- processes


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


@dataclass(frozen=True, slots=True)
class Background:
    """A detached process recorded in ``<dir>/run/<name>.json`` (pid, argv, extra facts such as a port).

    A recorded pid counts as ours only while ``/proc/<pid>/cmdline`` is still exactly the recorded argv, so a
    recycled pid is never signalled. Each runs in its own session; ``stop`` signals its process group."""

    name: str
    dir: Path

    @property
    def record_path(self) -> Path:
        return self.dir / "run" / f"{self.name}.json"

    @property
    def log_path(self) -> Path:
        return self.dir / "logs" / f"{self.name}.log"

    def record(self) -> dict[str, Any]:
        try:
            data = json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def pid(self) -> int | None:
        """The pid, when the recorded process still runs."""
        rec = self.record()
        pid = rec.get("pid")
        if isinstance(pid, int) and _cmdline(pid) == rec.get("argv"):
            return pid
        return None

    def start(self, argv: Sequence[str], env: Mapping[str, str], **facts: Any) -> int:
        self.record_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%F %T')} starting {self.name}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=dict(env), cwd=REPO, start_new_session=True,
            )  # fmt: skip
        self.record_path.write_text(json.dumps({"pid": proc.pid, "argv": list(argv), **facts}, indent=2) + "\n")
        deadline = time.monotonic() + 5.0  # until exec: before it, /proc/<pid>/cmdline is still ours
        while _cmdline(proc.pid) != list(argv) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return proc.pid

    def alive(self) -> bool:
        return self.pid() is not None

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM the process group, SIGKILL after ``timeout``. False when it was not running."""
        pid = self.pid()  # the record stays: its facts (e.g. the port) are reused by the next start
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _cmdline(pid) is not None and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if _cmdline(pid) is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _wait_port(port: int, proc: Background, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if not proc.alive():
            break
        time.sleep(0.1)
    raise LocalDevError(f"{proc.name} did not listen on 127.0.0.1:{port}; {proc.log_path}:\n{proc.log_tail()}")


# ----------------------------------------------------------------------------------------------- manifests


def quickstart_manifests(provider_url: str, key: str) -> list[dict[str, Any]]:
    """The provider-key Secret and the ``quickstart`` ServingEndpoint (OpenAI provider at ``provider_url``)."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": KEY_SECRET, "namespace": ENDPOINT_NAMESPACE},
            "type": "Opaque",
            "stringData": {"api-key": key},
        },
        {
            "apiVersion": "serving.modelgate.io/v1alpha1",
            "kind": "ServingEndpoint",
            "metadata": {"name": ENDPOINT, "namespace": ENDPOINT_NAMESPACE},
            "spec": {
                "description": "make up: chat through the local OpenAI-compatible stand-in provider",
                "servedEntities": [
                    {
                        "name": "gpt-4o-mini",
                        "externalModel": {
                            "name": "gpt-4o-mini",
                            "provider": "openai",
                            "task": "llm/v1/chat",
                            "openaiConfig": {
                                "openaiApiBase": f"{provider_url}/v1",
                                "openaiApiKey": f"{{{{secrets/{KEY_SECRET}/api-key}}}}",
                            },
                        },
                    }
                ],
            },
        },
    ]


def operator_rbac() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
    ]
    for name in ("service_account.yaml", "cluster_role.yaml", "cluster_role_binding.yaml"):
        docs.append(yaml.safe_load((RBAC_DIR / name).read_text()))
    return docs


# ----------------------------------------------------------------------------------------------- up / down


class LocalDev:
    def __init__(self, state_dir: Path, python: str = sys.executable) -> None:
        self.dir = state_dir.resolve()
        self.python = python
        self.operator = Background("operator", self.dir)
        self.provider = Background("fake-openai", self.dir)
        self.kubelet = Background("localkubelet", self.dir)

    @property
    def pods_dir(self) -> Path:
        return self.dir / "pods"

    def env(self, cluster: DevCluster, kubeconfig: Path | None = None) -> dict[str, str]:
        env = cluster.env(kubeconfig)
        paths = [str(REPO / "proxy"), str(REPO / "operator"), str(REPO / "hack")]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return env

    def cluster(self) -> DevCluster:
        with contextlib.suppress(DevClusterError):
            existing = DevCluster.attach(self.dir)
            if existing.running():
                say("control plane: already running")
                return existing
            existing.stop()  # half-dead leftovers
        started = time.monotonic()
        cluster = DevCluster(self.dir, detached=True).start()
        devcluster.link_tools(cluster)
        say(f"control plane: started in {time.monotonic() - started:.1f}s ({cluster.server})")
        return cluster

    def apply(self, cluster: DevCluster, docs: Sequence[Mapping[str, Any]]) -> None:
        text = yaml.safe_dump_all([dict(d) for d in docs], sort_keys=False)
        cluster.kubectl("apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}",
                        "-f", "-", input=text)  # fmt: skip

    def start_operator(self, cluster: DevCluster) -> None:
        self.apply(cluster, operator_rbac())
        kubeconfig = cluster.create_user_kubeconfig(
            OPERATOR_USER, ["system:serviceaccounts", f"system:serviceaccounts:{OPERATOR_NAMESPACE}"]
        )
        if self.operator.alive():
            say("operator: already running")
            return
        argv = [self.python, "-m", "modelgate_operator.cli", "run", "--all-namespaces", "--log-format", "json"]
        self.operator.start(argv, self.env(cluster, kubeconfig))
        say(f"operator: started as {OPERATOR_USER} (log: {self.operator.log_path})")

    def provider_key(self) -> str:
        path = self.dir / "fake-openai.key"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(f"sk-local-{secrets.token_hex(16)}\n")
        return path.read_text().strip()

    def start_provider(self, cluster: DevCluster) -> str:
        key = self.provider_key()
        port = self.provider.record().get("port")
        if self.provider.alive() and isinstance(port, int):
            say("provider stand-in: already running")
            return f"http://127.0.0.1:{port}"
        if not isinstance(port, int) or not localkubelet.port_free(port):
            port = localkubelet.free_port()
        argv = [self.python, str(REPO / "hack" / "fake_openai.py"), "--port", str(port)]
        self.provider.start(argv, {**self.env(cluster), "MODELGATE_FAKE_OPENAI_KEY": key}, port=port)
        _wait_port(port, self.provider)
        say(f"provider stand-in: OpenAI-compatible API on http://127.0.0.1:{port}/v1")
        return f"http://127.0.0.1:{port}"

    def start_kubelet(self, cluster: DevCluster) -> None:
        if self.kubelet.alive():
            say("local kubelet: already running")
            return
        argv = [self.python, "-m", "modelgate_dev.localkubelet", "--dir", str(self.pods_dir),
                "--kubeconfig", str(cluster.kubeconfig)]  # fmt: skip
        self.kubelet.start(argv, self.env(cluster))
        say(f"local kubelet: started (pods in {self.pods_dir})")

    def wait_ready(self, cluster: DevCluster, timeout: float = 90.0) -> dict[str, Any]:
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
                        if cond.get("status") == "True" and self.pod_answers():
                            return obj
            for proc in (self.operator, self.kubelet):
                if not proc.alive():
                    raise LocalDevError(f"{proc.name} exited; {proc.log_path}:\n{proc.log_tail()}")
            time.sleep(0.25)
        raise LocalDevError(
            f"ServingEndpoint {ENDPOINT} not Ready after {timeout:.0f}s ({last or 'no status yet'}); see "
            f"{self.operator.log_path} and {self.kubelet.log_path}"
        )

    def pod_answers(self) -> bool:
        """The local proxy process answers /readyz (a Ready status may be left over from an earlier run)."""
        try:
            port = int(json.loads(self.pod_info_path().read_text())["port"])
        except (OSError, ValueError, KeyError):
            return False
        return localkubelet.answers_ready(port)

    def pod_info_path(self) -> Path:
        return self.pods_dir / ENDPOINT_NAMESPACE / render.child_name(ENDPOINT) / "pod.json"

    def pod_url(self) -> str:
        info = json.loads(self.pod_info_path().read_text())
        return str(info["url"])

    def up(self) -> str:
        """Bring everything up; returns the local proxy's base URL."""
        cluster = self.cluster()
        crds = cluster.install_crds(REPO / "crds")
        say(f"CRD: {', '.join(crds)} Established")
        self.start_operator(cluster)
        provider_url = self.start_provider(cluster)
        self.start_kubelet(cluster)
        docs = quickstart_manifests(provider_url, self.provider_key())
        (self.dir / "quickstart.yaml").write_text(
            yaml.safe_dump_all([docs[1]], sort_keys=False)
        )  # the endpoint only: the Secret holds the key
        self.apply(cluster, docs)
        say(f"applied Secret {KEY_SECRET} and ServingEndpoint {ENDPOINT} in namespace {ENDPOINT_NAMESPACE}")
        started = time.monotonic()
        self.wait_ready(cluster)
        say(f"ServingEndpoint {ENDPOINT}: Ready ({time.monotonic() - started:.1f}s)")
        return self.pod_url()

    def down(self, purge: bool = False) -> None:
        for proc in (self.kubelet, self.operator, self.provider):
            if proc.stop():
                say(f"{proc.name}: stopped")
        for info in self.pods_dir.glob("*/*/pod.json"):  # proxies a crashed kubelet left behind
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                pid = json.loads(info.read_text())["pid"]
                argv = _cmdline(int(pid)) or []
                if any("modelgate" in a for a in argv) and "serve" in argv:
                    os.kill(int(pid), signal.SIGTERM)
                    say(f"proxy {info.parent.name}: stopped")
        with contextlib.suppress(DevClusterError):
            cluster = DevCluster.attach(self.dir)
            cluster.stop()
            say("control plane: stopped")
        if purge:
            shutil.rmtree(self.dir, ignore_errors=True)
            say(f"deleted {self.dir}")


def chat(base_url: str, text: str, timeout: float = 30.0) -> str:
    """One chat request through the proxy's Databricks route; returns the answer's text."""
    req = urllib.request.Request(  # noqa: S310 - a loopback URL we built
        f"{base_url}/serving-endpoints/{ENDPOINT}/invocations",
        data=json.dumps({"messages": [{"role": "user", "content": text}], "max_tokens": 64}).encode(),
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: ignore *_proxy
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
    return f"""
modelgate is running locally. Point kubectl at the cluster:
  export KUBECONFIG={state_dir}/kubeconfig PATH={state_dir}/bin:$PATH
  kubectl get servingendpoints -A          # short name: se
  kubectl describe se {ENDPOINT}

Query the endpoint (the local process playing its pod listens on {url}):
  curl -s {url}/serving-endpoints/{ENDPOINT}/invocations -H 'Content-Type: application/json' \\
       -d '{body}'
  {python} - <<'PY'   # from the repository: its venv has the openai package
from openai import OpenAI
client = OpenAI(base_url="{url}/serving-endpoints", api_key="unused")
print(client.chat.completions.create(model="{ENDPOINT}", messages=[{{"role": "user", "content": "Hello"}}])
      .choices[0].message.content)
PY

Edit it with `kubectl edit se {ENDPOINT}` (or {state_dir}/quickstart.yaml + kubectl apply): the operator
re-renders and the local kubelet restarts the proxy. Other samples: samples/*.yaml (each says which Secret
it needs; real providers are not reachable from here).
Logs: {state_dir}/logs/ (operator, localkubelet, fake-openai, kube-apiserver, etcd);
      proxy: {state_dir}/pods/{ENDPOINT_NAMESPACE}/{render.child_name(ENDPOINT)}/proxy.log
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
        answer = chat(url, question)
    except (LocalDevError, DevClusterError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    say(f"chat through the proxy: {question!r} -> {answer!r}")
    print()
    print(DevCluster.attach(dev.dir).kubectl("get", "servingendpoints", "-A").stdout.rstrip())
    print(usage(dev.dir, url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
