"""Start and stop the dev cluster's real node; the teardown restores the host (see host.py).

    node = RealNode(state_dir, bin_dir)
    cluster = DevCluster(..., extra_apiserver_args=node.apiserver_args())   # kubelet client cert
    cluster.start(); node.start(cluster)      # containerd, images, CNI bridge, kcm, scheduler, kubelet
    ...
    node.stop()                               # returns what it undid, line by line

One node per machine (bridge, subnet, cgroup root are fixed): a second ``start`` while another node's
processes live raises :class:`NodeBusy`; a dead node's leftovers are torn down first.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol

from ..devcluster_pki import Pki
from ..images import build as images
from ..timing import say, step
from . import cni, containerd, controllers, kubelet
from .host import HostSnapshot
from .layout import CGROUP_NAMES, GATEWAY, LOCK, NODE_NAME, RUN_DIR, Layout
from .procs import NodeError, alive, log_tail, spawn, wait_until

READY_TIMEOUT = 120.0
COMPONENTS = ("kubelet", "kube-scheduler", "kube-controller-manager", "apiserver-relay", "containerd")
"""Stop order (reverse of start)."""
RELAY_PORT = 6443
"""Pods reach the API server at ``GATEWAY:RELAY_PORT`` (see relay.py)."""
HACK_DIR = Path(__file__).resolve().parents[2]


class NodeBusy(NodeError):
    """Another live node holds this machine's node lock."""


class Cluster(Protocol):
    """What the node needs from the dev control plane (``DevCluster``)."""

    @property
    def dir(self) -> Path: ...
    @property
    def kubeconfig(self) -> Path: ...
    @property
    def server(self) -> str: ...
    def create_user_kubeconfig(self, name: str, groups: list[str] | tuple[str, ...] = ()) -> Path: ...
    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]: ...


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class RealNode:
    def __init__(self, state_dir: Path, bin_dir: Path) -> None:
        self.layout = Layout(Path(state_dir).resolve())
        self.bin_dir = bin_dir
        self.pids: dict[str, int] = {}
        self.images: dict[str, images.Image] = {}

    # ------------------------------------------------------------------ before the API server starts
    def apiserver_args(self) -> list[str]:
        """kube-apiserver flags for reaching this node's kubelet (its client certificate, by Hostname)."""
        pki = Pki(self.layout.state / "pki")
        crt, key = pki.path("apiserver-kubelet-client.crt"), pki.path("apiserver-kubelet-client.key")
        if not crt.exists():
            cert, k = pki.client_cert("kube-apiserver-kubelet-client", ["system:masters"])
            crt.write_bytes(cert)
            Pki._write_private(key, k)
        return [f"--kubelet-client-certificate={crt}", f"--kubelet-client-key={key}",
                "--kubelet-preferred-address-types=Hostname"]  # fmt: skip

    # ------------------------------------------------------------------ start
    def start(self, cluster: Cluster) -> RealNode:
        started = time.monotonic()
        self._take_lock()
        try:
            self._start(cluster)
        except BaseException:
            say("node", "start failed: tearing down")
            self.stop()
            raise
        say("node", f"node {NODE_NAME} Ready in {time.monotonic() - started:.1f}s")
        return self

    def _start(self, cluster: Cluster) -> None:
        lay = self.layout
        for d in (lay.logs, lay.config, lay.kubelet_root, lay.pod_logs, lay.containerd_root, RUN_DIR):
            d.mkdir(parents=True, exist_ok=True)
        HostSnapshot.take(CGROUP_NAMES).save(lay.snapshot)
        with step("node", "images (build what is missing)"):
            self.images = images.ensure_built()
        with step("node", "containerd"):
            cfg = lay.config / "containerd.toml"
            cfg.write_text(containerd.config_toml(lay, self.images["pause"].ref))
            self._spawn("containerd", containerd.argv(lay, cfg))
            wait_until("containerd", self._containerd_answers, 30, lay.logs / "containerd.log",
                       self.pids["containerd"])  # fmt: skip
        with step("node", "loading images into containerd"):
            images.load(self.images, lay.containerd_socket)
        with step("node", "CNI bridge + API server relay for pods"):
            cni.create_bridge()
            cni.write(lay)
            port = int(cluster.server.rsplit(":", 1)[1])
            self.pids["apiserver-relay"] = spawn(
                "apiserver-relay",
                ["apiserver-relay", "-m", "modelgate_dev.node.relay", "--listen", f"{GATEWAY}:{RELAY_PORT}",
                 "--to", f"127.0.0.1:{port}"],
                lay.logs, env={**os.environ, "PYTHONPATH": str(HACK_DIR)}, executable=sys.executable,
            )  # fmt: skip
            self._save_pids()
        pki = cluster.dir / "pki"
        kcm_port, sched_port, kl_port, kl_health = _free_ports(4)
        with step("node", "kube-controller-manager + kube-scheduler"):
            kcm_kc = cluster.create_user_kubeconfig("system:kube-controller-manager")
            sched_kc = cluster.create_user_kubeconfig("system:kube-scheduler")
            self._spawn("kube-controller-manager", controllers.kcm_argv(
                self.bin_dir / "kube-controller-manager", kcm_kc, kcm_port, pki / "sa.key", pki / "ca.crt"))
            self._spawn("kube-scheduler", controllers.scheduler_argv(self.bin_dir / "kube-scheduler", sched_kc,
                                                                     sched_port))  # fmt: skip
        with step("node", "kubelet, node Ready"):
            kubelet.make_cgroup_root()
            kl_kc = cluster.create_user_kubeconfig(f"system:node:{NODE_NAME}", ["system:nodes"])
            cfg = kubelet.write_config(lay, lay.state / "pki" / "client-ca.crt", kl_port, kl_health)
            self._spawn("kubelet", kubelet.argv(self.bin_dir / "kubelet", lay, cfg, kl_kc))
            wait_until("node Ready", lambda: self._node_ready(cluster), READY_TIMEOUT, lay.logs / "kubelet.log",
                       self.pids["kubelet"])  # fmt: skip
            for name in COMPONENTS:
                if not alive(self.pids[name], name):
                    raise NodeError(f"{name} exited: {log_tail(lay.logs / f'{name}.log')}")
        with step("node", "ServiceAccount default/default"):
            wait_until("default ServiceAccount", lambda: cluster.kubectl("get", "sa", "default", check=False)
                       .returncode == 0, 60, lay.logs / "kube-controller-manager.log")  # fmt: skip

    def _spawn(self, name: str, argv: list[str]) -> None:
        self.pids[name] = spawn(name, argv, self.layout.logs)
        self._save_pids()

    def _save_pids(self) -> None:
        self.layout.pids.write_text(json.dumps(self.pids) + "\n")

    def _containerd_answers(self) -> bool:
        sock = self.layout.containerd_socket
        if not sock.exists():
            return False
        res = subprocess.run(["ctr", "--address", str(sock), "version"], capture_output=True, timeout=10)
        return res.returncode == 0

    @staticmethod
    def _node_ready(cluster: Cluster) -> bool:
        res = cluster.kubectl("get", "node", NODE_NAME, "-o",
                              'jsonpath={.status.conditions[?(@.type=="Ready")].status}', check=False)  # fmt: skip
        return res.stdout.strip() == "True"

    # ------------------------------------------------------------------ lock
    def _take_lock(self) -> None:
        RUN_DIR.parent.mkdir(parents=True, exist_ok=True)
        if LOCK.exists():
            try:
                other = json.loads(LOCK.read_text())
            except (OSError, ValueError):
                other = {}
            other_state = Path(other.get("state", ""))
            other_pids = _read_pids(other_state / "pids.json") if other.get("state") else {}
            live = {n: p for n, p in other_pids.items() if alive(p, n)}
            if live:
                raise NodeBusy(f"a dev node from {other_state} is running on this machine ({live}); "
                               "stop it first (make down)")  # fmt: skip
            if other.get("state") and other_state.is_dir() and other_state != self.layout.state:
                say("node", f"tearing down the leftovers of a dead node in {other_state}")
                RealNode(other_state, self.bin_dir).stop()
        LOCK.write_text(json.dumps({"state": str(self.layout.state), "owner": os.getpid()}) + "\n")

    # ------------------------------------------------------------------ stop
    @classmethod
    def attach(cls, state_dir: Path, bin_dir: Path) -> RealNode:
        node = cls(state_dir, bin_dir)
        node.pids = _read_pids(node.layout.pids)
        return node

    def running(self) -> bool:
        return bool(self.pids) and all(alive(self.pids.get(n, -1), n) for n in COMPONENTS)

    def refresh_images(self) -> None:
        """Build what changed since the node started and load it (``make up`` on a running node)."""
        self.images = images.ensure_built()
        images.load(self.images, self.layout.containerd_socket)

    def stop(self) -> list[str]:
        """Stop every process, remove pods, mounts, the bridge, cgroups, kubelet's iptables chains; restore
        sysctls. Safe to call twice and on a half-started node. Returns what it did."""
        from .teardown import teardown

        with step("node", "teardown"):
            done = teardown(self.layout, self.pids, self.bin_dir)
        self.pids = {}
        with contextlib.suppress(OSError):
            if json.loads(LOCK.read_text()).get("state") == str(self.layout.state):
                LOCK.unlink()
        return done

    def leftovers(self) -> list[str]:
        """What still differs from the host before this node started (empty after a clean teardown)."""
        if not self.layout.snapshot.exists():
            return ["no host snapshot recorded"]
        return HostSnapshot.load(self.layout.snapshot).leftovers(CGROUP_NAMES)

    @staticmethod
    def pod_api_env() -> dict[str, str]:
        """Environment for pods that talk to the API server (no kube-proxy routes the ``kubernetes`` Service)."""
        return {"KUBERNETES_SERVICE_HOST": str(GATEWAY), "KUBERNETES_SERVICE_PORT": str(RELAY_PORT)}


def _read_pids(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def have_binaries(bin_dir: Path) -> list[str]:
    return [t for t in ("kubelet", "kube-controller-manager", "kube-scheduler", "crictl")
            if not os.access(bin_dir / t, os.X_OK)] + [t for t in ("containerd", "runc", "ctr", "ip")
            if shutil.which(t) is None]  # fmt: skip
