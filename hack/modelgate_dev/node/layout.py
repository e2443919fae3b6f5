"""Fixed names and places of the (single) dev node: one per machine, guarded by a lock."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from ..images.cache import cache_root

NODE_NAME = "localhost"
"""The node's name is its Hostname address, which the API server dials for logs/exec: always loopback."""
BRIDGE = "mgnode0"
POD_SUBNET = ipaddress.ip_network("10.244.77.0/24")
GATEWAY = ipaddress.ip_address("10.244.77.1")
"""The bridge's host address: the node IP, and where pods reach host-side stand-ins (inside the machine)."""
CGROUP_ROOT = "modelgate-node"
CGROUP_NAMES = (CGROUP_ROOT,)
CGROUP_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
                      "hugetlb", "net_cls", "net_prio", "perf_event")  # fmt: skip
RUN_DIR = Path("/run/modelgate-node")
"""Sockets and containerd state (short paths: unix socket paths are limited to 107 bytes)."""
LOCK = Path("/run/modelgate-node.lock")


@dataclass(frozen=True)
class Layout:
    """Per-run directories under ``state``; containerd's content store persists in the cache (images stay)."""

    state: Path

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def kubelet_root(self) -> Path:
        return self.state / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.state / "pod-logs"

    @property
    def cni_conf(self) -> Path:
        return self.state / "cni" / "net.d"

    @property
    def cni_ipam(self) -> Path:
        return self.state / "cni" / "ipam"

    @property
    def config(self) -> Path:
        return self.state / "config"

    @property
    def snapshot(self) -> Path:
        return self.state / "host-before.json"

    @property
    def pids(self) -> Path:
        return self.state / "pids.json"

    @property
    def containerd_root(self) -> Path:
        return cache_root() / "node" / "containerd"

    @property
    def containerd_state(self) -> Path:
        return RUN_DIR / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return RUN_DIR / "containerd.sock"
