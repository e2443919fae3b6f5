"""kubelet's configuration for the dev node.

cgroupfs under an existing ``cgroupRoot`` (created here per controller), API on 127.0.0.1 with webhook
authentication and authorization, no eviction, no image garbage collection (images are made here and
cannot be pulled back), fast status and volume sync so tests see Secret updates and readiness quickly.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import yaml

from .layout import CGROUP_CONTROLLERS, CGROUP_ROOT, GATEWAY, NODE_NAME, Layout

CGROUPS = Path("/sys/fs/cgroup")


def config(layout: Layout, client_ca: Path, port: int, healthz_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": "127.0.0.1",
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP_ROOT}",
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
        "failSwapOn": False,
        "failCgroupV1": False,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "imageServiceEndpoint": f"unix://{layout.containerd_socket}",
        "podLogsDir": str(layout.pod_logs),
        "staticPodPath": "",
        "resolvConf": "",
        "clusterDNS": [],
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {},
        "evictionPressureTransitionPeriod": "10s",
        "syncFrequency": "5s",
        "fileCheckFrequency": "10s",
        "nodeStatusUpdateFrequency": "5s",
        "volumeStatsAggPeriod": "0s",
        "localStorageCapacityIsolation": False,
        "shutdownGracePeriod": "0s",
        "maxPods": 60,
    }


def write_config(layout: Layout, client_ca: Path, port: int, healthz_port: int) -> Path:
    layout.config.mkdir(parents=True, exist_ok=True)
    path = layout.config / "kubelet.yaml"
    path.write_text(yaml.safe_dump(config(layout, client_ca, port, healthz_port), sort_keys=False))
    return path


def argv(kubelet: Path, layout: Layout, config_path: Path, kubeconfig: Path) -> list[str]:
    return [
        str(kubelet), f"--config={config_path}", f"--kubeconfig={kubeconfig}",
        f"--root-dir={layout.kubelet_root}", f"--cert-dir={layout.kubelet_root / 'pki'}",
        f"--hostname-override={NODE_NAME}", f"--node-ip={GATEWAY}", "--v=1",
    ]  # fmt: skip


def make_cgroup_root() -> None:
    """kubelet needs ``cgroupRoot`` to exist in every controller; cpuset children start empty, so copy the
    parent's cpus/mems (a task cannot join a cpuset cgroup without them)."""
    for controller in CGROUP_CONTROLLERS:
        base = CGROUPS / controller
        if not base.is_dir():
            continue
        d = base / CGROUP_ROOT
        d.mkdir(exist_ok=True)
        if controller == "cpuset":
            for f in ("cpuset.cpus", "cpuset.mems"):
                with contextlib.suppress(OSError):
                    if not (d / f).read_text().strip():
                        (d / f).write_text((base / f).read_text())
