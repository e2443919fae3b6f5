"""A stand-in kubelet (and Deployment controller) for the local control plane, which has neither.

For every Deployment the operator manages (by its ``managed-by`` label) it does what a node would do for one
replica: it writes the pod's ConfigMap and Secret volumes under ``<dir>/<namespace>/<deployment>/root/`` exactly
as they would be mounted (``subPath`` files, one file per projected Secret key), runs the container's command as
a local process (``modelgate serve ...``, with the mount paths moved under that root and the listen address
moved to 127.0.0.1 and a free port), waits for ``/readyz``, and then reports the rollout on the Deployment's
status subresource the way the Deployment controller does, which is what makes the operator report
``ProxyAvailable``/``Ready``. A new pod template (new config or secret checksum) restarts the process on the same
port; ``replicas: 0`` or a deleted Deployment stops it. One local process stands for all replicas.

Dev tool only: ``make up`` runs it in the background (``python -m modelgate_dev.localkubelet``); the tests
run the same code. ``<dir>/<namespace>/<deployment>/pod.json`` says where each proxy listens.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightkube import ApiError, Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.models.apps_v1 import Deployment as DeploymentModel
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Secret
from lightkube.types import PatchType

from modelgate_operator.render import MANAGED_BY

logger = logging.getLogger("modelgate_dev.localkubelet")

MANAGED_SELECTOR: dict[str, Any] = {"app.kubernetes.io/managed-by": MANAGED_BY}
READY_TIMEOUT = 60.0
"""Seconds a started proxy may take to answer ``/readyz`` before it is restarted."""



def terminate(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; returns once the process is reaped."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)

class LocalKubeletError(Exception):
    """The Deployment cannot be run locally (e.g. a volume type this stand-in does not support)."""


# ----------------------------------------------------------------------------------------------- pure parts


def template_hash(template: Mapping[str, Any]) -> str:
    """Identity of a pod template: a change means a new rollout (new process)."""
    return hashlib.sha256(json.dumps(template, sort_keys=True, default=str).encode()).hexdigest()[:16]


def local_path(root: Path, container_path: str) -> Path:
    return root / container_path.lstrip("/")


def local_command(
    command: Sequence[str], mount_paths: Sequence[str], root: Path, port: int, modelgate: Sequence[str]
) -> list[str]:
    """The container command rewritten to run here: ``modelgate`` -> ``modelgate`` (the given argv), every
    argument that is a path at, under or above a mount point -> that path under ``root``, ``--host`` -> 127.0.0.1 and
    ``--port`` -> ``port``."""
    if not command or command[0] != "modelgate":
        raise LocalKubeletError(f"not a modelgate container command: {list(command)[:2]}")

    def within(path: str, directory: str) -> bool:
        return path == directory or path.startswith(directory.rstrip("/") + "/")

    def moved(arg: str) -> str:
        if arg.startswith("/") and any(within(arg, m) or within(m, arg) for m in mount_paths):
            return str(local_path(root, arg))
        return arg

    out = list(modelgate)
    args = iter(command[1:])
    for arg in args:
        if arg == "--host":
            next(args, None)
            out += [arg, "127.0.0.1"]
        elif arg == "--port":
            next(args, None)
            out += [arg, str(port)]
        else:
            out.append(moved(arg))
    return out


def rollout_status(generation: int, replicas: int, available: bool, *, completed: bool = False) -> dict[str, Any]:
    """The Deployment status the Deployment controller would write once the rollout is (or is not) done.

    Its conditions too: ``Progressing`` says ``NewReplicaSetAvailable`` once this generation has been fully
    available (``available``, or ``completed`` for pods that failed after the rollout had finished: the controller
    does not revisit a finished rollout), ``ReplicaSetUpdated`` while it is still rolling out."""
    n = replicas if available else 0
    done = available or completed
    return {
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": n,
        "availableReplicas": n,
        "unavailableReplicas": replicas - n,
        "conditions": [
            {
                "type": "Available",
                "status": "True" if available or replicas == 0 else "False",
                "reason": "MinimumReplicasAvailable" if available or replicas == 0 else "MinimumReplicasUnavailable",
                "message": "Deployment has minimum availability." if available or replicas == 0
                else "Deployment does not have minimum availability.",
            },
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                "message": "ReplicaSet has successfully progressed." if done else "ReplicaSet is progressing.",
            },
        ],
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def default_modelgate() -> list[str]:
    """How to run ``modelgate`` here: the console script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "modelgate"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "modelgate_proxy"]


# ----------------------------------------------------------------------------------------------- API parts


def mark_rolled_out(
    client: Client, namespace: str, name: str, generation: int, replicas: int, available: bool, *, completed: bool = False
) -> None:
    """Patch ``deployments/status`` as the Deployment controller would (see :func:`rollout_status`)."""
    client.patch(
        Deployment.Status,
        name,
        {"status": rollout_status(generation, replicas, available, completed=completed)},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )


def write_volumes(client: Client, namespace: str, dep: DeploymentModel, root: Path) -> list[str]:
    """Write the pod's volumes under ``root`` as the kubelet would mount them; returns the mount paths.

    ConfigMap volumes: the ``subPath`` file (or every item); Secret volumes: one file per projected key
    (mode 0600); emptyDir: an empty directory. Anything else is not supported here.
    """
    assert dep.spec is not None
    assert dep.spec.template.spec is not None
    pod = dep.spec.template.spec
    if len(pod.containers) != 1:
        raise LocalKubeletError("only single-container pods can run locally")
    (container,) = pod.containers
    volumes = {v.name: v for v in pod.volumes or []}
    mounts: list[str] = []
    for mount in container.volumeMounts or []:
        vol = volumes.get(mount.name)
        if vol is None:
            raise LocalKubeletError(f"volume {mount.name} is mounted but not declared")
        target = local_path(root, mount.mountPath)
        if vol.configMap is not None:
            cm = client.get(ConfigMap, vol.configMap.name or "", namespace=namespace)
            data = dict(cm.data or {})
            items = {i.key: i.path for i in vol.configMap.items or []} or {k: k for k in data}
            files = {path: data[key] for key, path in items.items()}
            if mount.subPath is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(files[mount.subPath])
            else:
                target.mkdir(parents=True, exist_ok=True)
                for path, text in files.items():
                    (target / path).write_text(text)
        elif vol.secret is not None:
            secret = client.get(Secret, vol.secret.secretName or "", namespace=namespace)
            data = dict(secret.data or {})
            items = {i.key: i.path for i in vol.secret.items or []} or {k: k for k in data}
            target.mkdir(parents=True, exist_ok=True, mode=0o700)
            for key, path in items.items():
                file = target / path
                file.touch(mode=0o600)
                file.write_bytes(base64.b64decode(data[key]))
        elif vol.emptyDir is not None:
            target.mkdir(parents=True, exist_ok=True)
        else:
            raise LocalKubeletError(f"volume {mount.name}: only configMap, secret and emptyDir run locally")
        mounts.append(mount.mountPath)
    return mounts


def materialize(
    client: Client, namespace: str, deployment: str, root: Path, port: int, modelgate: Sequence[str] | None = None
) -> list[str]:
    """Write the Deployment's volumes under ``root`` and return its container command rewritten to run here."""
    dep = client.get(Deployment, deployment, namespace=namespace)
    return _materialize(client, namespace, dep, root, port, modelgate)


def _materialize(
    client: Client, namespace: str, dep: DeploymentModel, root: Path, port: int, modelgate: Sequence[str] | None
) -> list[str]:
    assert dep.spec is not None
    assert dep.spec.template.spec is not None
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, mode=0o700)
    mounts = write_volumes(client, namespace, dep, root)
    (container,) = dep.spec.template.spec.containers
    return local_command(container.command or [], mounts, root, port, modelgate or default_modelgate())


_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via $http_proxy


def answers_ready(port: int, timeout: float = 0.5) -> bool:
    try:
        with _LOOPBACK.open(f"http://127.0.0.1:{port}/readyz", timeout=timeout) as r:
            return bool(r.status == 200)
    except (OSError, urllib.error.URLError):
        return False


# ----------------------------------------------------------------------------------------------- the loop


@dataclass
class LocalPod:
    """The local process standing in for one Deployment's pods."""

    namespace: str
    name: str
    dir: Path
    port: int
    template: str = ""
    generation: int = 0
    replicas: int = 1
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    ready: bool = False
    reported: tuple[int, bool] | None = None
    completed: int = 0
    """The last generation that was fully available (its rollout finished)."""
    restarts: int = 0
    not_before: float = 0.0
    env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
        self.proc = None
        self.ready = False
        self.write_info()

    def write_info(self) -> None:
        info = {
            "namespace": self.namespace,
            "deployment": self.name,
            "url": self.url,
            "port": self.port,
            "pid": self.proc.pid if self.running() and self.proc is not None else None,
            "ready": self.ready,
            "generation": self.generation,
            "log": str(self.dir / "proxy.log"),
        }
        (self.dir / "pod.json").write_text(json.dumps(info, indent=2) + "\n")


class LocalKubelet:
    """Runs the operator's Deployments as local processes; call :meth:`sync` repeatedly (or :meth:`run`)."""

    def __init__(
        self,
        client: Client,
        state_dir: Path,
        *,
        namespace: str | None = None,
        modelgate: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        self.client = client
        self.state_dir = state_dir
        self.namespace = namespace
        self.modelgate = list(modelgate or default_modelgate())
        self.env = dict(env if env is not None else os.environ)
        self.ready_timeout = ready_timeout
        self.pods: dict[tuple[str, str], LocalPod] = {}

    # ------------------------------------------------------------------------------------------ one pass
    def sync(self) -> None:
        """One pass: start, restart, probe and report every managed Deployment; stop what is gone."""
        seen: set[tuple[str, str]] = set()
        namespace = self.namespace if self.namespace is not None else "*"
        for dep in self.client.list(Deployment, namespace=namespace, labels=MANAGED_SELECTOR):
            meta = dep.metadata
            if meta is None or meta.name is None or meta.namespace is None or meta.deletionTimestamp is not None:
                continue
            key = (meta.namespace, meta.name)
            seen.add(key)
            try:
                self._sync_one(dep)
            except (ApiError, LocalKubeletError, OSError, KeyError) as exc:
                logger.warning("%s/%s: %s", key[0], key[1], exc)
        for key in [k for k in self.pods if k not in seen]:
            pod = self.pods[key]
            logger.info("%s/%s: Deployment gone, stopping its proxy", *key)
            pod.stop()
            shutil.rmtree(pod.dir, ignore_errors=True)
            del self.pods[key]

    def _pod(self, namespace: str, name: str) -> LocalPod:
        key = (namespace, name)
        pod = self.pods.get(key)
        if pod is None:
            directory = self.state_dir / namespace / name
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            port = 0
            with contextlib.suppress(OSError, ValueError, KeyError):
                port = int(json.loads((directory / "pod.json").read_text())["port"])
            if not port or not port_free(port):
                port = free_port()
            pod = self.pods[key] = LocalPod(namespace, name, directory, port)
        return pod

    def _sync_one(self, dep: DeploymentModel) -> None:
        assert dep.metadata is not None
        assert dep.spec is not None
        namespace, name = dep.metadata.namespace or "", dep.metadata.name or ""
        pod = self._pod(namespace, name)
        pod.generation = int(dep.metadata.generation or 0)
        pod.replicas = dep.spec.replicas if dep.spec.replicas is not None else 1
        template = template_hash(dep.spec.template.to_dict())
        if pod.replicas == 0:
            if pod.proc is not None:
                logger.info("%s/%s: scaled to zero, stopping its proxy", namespace, name)
                pod.stop()
            pod.template = template
            self._report(pod, available=False)
            return
        now = time.monotonic()
        if template != pod.template or not pod.running():
            if pod.proc is not None and template == pod.template:  # it died
                pod.restarts += 1
                pod.not_before = now + min(2.0**pod.restarts, 30.0)
                logger.warning("%s/%s: proxy exited (code %s)", namespace, name, pod.proc.poll())
                pod.stop()
                self._report(pod, available=False)
            if now < pod.not_before:
                return
            if template != pod.template:
                pod.restarts = 0
            self._start(pod, dep, template)
        if not pod.ready:
            if answers_ready(pod.port):
                pod.ready = True
                pod.write_info()
                logger.info("%s/%s: proxy ready on %s", namespace, name, pod.url)
            elif now - pod.started > self.ready_timeout:
                logger.warning("%s/%s: proxy not ready after %.0fs, restarting", namespace, name, self.ready_timeout)
                pod.stop()
                pod.template = ""
                return
        if pod.ready:
            self._report(pod, available=True)

    def _start(self, pod: LocalPod, dep: DeploymentModel, template: str) -> None:
        pod.stop()
        command = _materialize(self.client, pod.namespace, dep, pod.dir / "root", pod.port, self.modelgate)
        log = (pod.dir / "proxy.log").open("ab")
        try:
            pod.proc = subprocess.Popen(  # same process group as the kubelet: stopping it stops its proxies
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=pod.dir, env=self.env
            )
        finally:
            log.close()
        pod.template = template
        pod.started = time.monotonic()
        pod.ready = False
        pod.reported = None
        pod.write_info()
        self._report(pod, available=False)  # truthful while it starts (e.g. a status left by an earlier run)
        logger.info("%s/%s: started the proxy (generation %d) on %s", pod.namespace, pod.name, pod.generation, pod.url)

    def _report(self, pod: LocalPod, *, available: bool) -> None:
        state = (pod.generation, available)
        if pod.reported == state:
            return
        if available:
            pod.completed = pod.generation
        mark_rolled_out(self.client, pod.namespace, pod.name, pod.generation, pod.replicas, available,
                        completed=pod.completed == pod.generation)  # fmt: skip
        pod.reported = state

    # ------------------------------------------------------------------------------------------ lifecycle
    def run(self, halt: threading.Event, interval: float = 0.5) -> None:
        """Sync every ``interval`` seconds until ``halt`` is set; then stop every proxy."""
        try:
            while not halt.is_set():
                try:
                    self.sync()
                except ApiError as exc:
                    logger.warning("listing Deployments failed: %s", exc)
                except OSError as exc:
                    logger.warning("API server unreachable: %s", exc)
                halt.wait(interval)
        finally:
            self.stop_all()

    def stop_all(self) -> None:
        for pod in self.pods.values():
            pod.stop()
        self.pods.clear()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelgate_dev.localkubelet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--dir", required=True, type=Path, help="where pods' volumes, logs and pod.json go")
    parser.add_argument("--kubeconfig", default=None, help="default: $KUBECONFIG")
    parser.add_argument("-n", "--namespace", default=None, help="only this namespace (default: all)")
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx2", "httpcore2", "httpx", "httpcore"):  # as settings.QUIET_LOGGERS (without kopf)
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = KubeConfig.from_file(args.kubeconfig) if args.kubeconfig else KubeConfig.from_env()
    client = Client(config, field_manager="modelgate-localkubelet")
    halt = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: halt.set())
    args.dir.mkdir(parents=True, exist_ok=True)
    LocalKubelet(client, args.dir.resolve(), namespace=args.namespace).run(halt, args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
