"""containerd's own configuration: private socket, root and state, CRI with overlayfs and runc (cgroupfs).

``restrict_oom_score_adj = true`` is required on these machines: root lacks CAP_SYS_RESOURCE, so runc cannot
set a pod's ``oom_score_adj`` below its own and every sandbox fails with ``can't get final child's PID from
pipe: EOF`` without it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .layout import Layout

CNI_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")


def cni_bin_dir() -> str:
    for d in CNI_BIN_DIRS:
        if (Path(d) / "bridge").exists():
            return d
    return CNI_BIN_DIRS[0]


def config_toml(layout: Layout, sandbox_image: str) -> str:
    q = json.dumps  # TOML basic strings are JSON strings
    return f"""version = 2
root = {q(str(layout.containerd_root))}
state = {q(str(layout.containerd_state))}
[grpc]
  address = {q(str(layout.containerd_socket))}
[ttrpc]
  address = {q(str(layout.containerd_socket) + ".ttrpc")}
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = {q(sandbox_image)}
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = {q(cni_bin_dir())}
    conf_dir = {q(str(layout.cni_conf))}
[plugins."io.containerd.internal.v1.opt"]
  path = {q(str(layout.state / "containerd-opt"))}
"""


def argv(layout: Layout, config: Path) -> list[str]:
    return [shutil.which("containerd") or "/usr/bin/containerd", "--config", str(config)]


def is_our_shim(args: list[str], layout: Layout) -> bool:
    """containerd-shim-runc-v2 processes outlive containerd; ours carry our socket in ``-address``."""
    return bool(args) and Path(args[0]).name.startswith("containerd-shim") and str(layout.containerd_socket) in args


def cmdline_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return ""
