"""The pod network: a Linux bridge with a subnet that exists only inside this machine.

Pods get an address from ``POD_SUBNET`` and a route to that subnet only (no default route, no
masquerade), so a pod can reach the host at ``GATEWAY`` and other pods, and nothing outside the machine.
The bridge is created (with the gateway address) before kubelet starts, so kubelet can use it as node IP
and host-side stand-ins can listen on it.
"""

from __future__ import annotations

import json
import subprocess

from .layout import BRIDGE, GATEWAY, POD_SUBNET, Layout


def conflist(layout: Layout) -> str:
    return json.dumps({
        "cniVersion": "0.4.0",
        "name": "modelgate-node",
        "plugins": [
            {
                "type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(POD_SUBNET), "gateway": str(GATEWAY)}]],
                    "routes": [{"dst": str(POD_SUBNET)}],
                    "dataDir": str(layout.cni_ipam),
                },
            },
            {"type": "loopback"},
        ],
    }, indent=1)  # fmt: skip


def write(layout: Layout) -> None:
    layout.cni_conf.mkdir(parents=True, exist_ok=True)
    (layout.cni_conf / "10-modelgate-node.conflist").write_text(conflist(layout))


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def create_bridge() -> None:
    if _ip("link", "show", BRIDGE, check=False).returncode != 0:
        _ip("link", "add", BRIDGE, "type", "bridge")
    if str(GATEWAY) not in _ip("-o", "addr", "show", "dev", BRIDGE).stdout:
        _ip("addr", "add", f"{GATEWAY}/{POD_SUBNET.prefixlen}", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")


def delete_bridge() -> list[str]:
    """Delete veths still enslaved to the bridge, then the bridge itself."""
    removed = []
    ports = _ip("-o", "link", "show", "master", BRIDGE, check=False).stdout.splitlines()
    for line in ports:
        name = line.split(":")[1].strip().split("@")[0]
        if _ip("link", "del", name, check=False).returncode == 0:
            removed.append(name)
    if _ip("link", "del", BRIDGE, check=False).returncode == 0:
        removed.append(BRIDGE)
    return removed
