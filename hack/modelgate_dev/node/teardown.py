"""Undo everything a node did, in order, each step bounded; never touches what it did not create.

kubelet first (so it recreates nothing), then every pod sandbox via CRI, the controllers, containerd, its
leftover shims (matched on our socket, killed by pid), any process still in our cgroups, mounts under our
directories and the pods' network namespaces, the bridge and its veths, our cgroups, kubelet's iptables
chains, the sysctls kubelet changed, and the directories kubelet/containerd/CNI made outside ours.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from ..images.dockerd import remove_cgroup_tree
from . import cni, containerd
from .host import HostSnapshot, mounts
from .layout import CGROUP_ROOT, RUN_DIR, Layout
from .procs import alive, pids_matching, stop_pid

CGROUPS = Path("/sys/fs/cgroup")


def teardown(layout: Layout, pids: dict[str, int], bin_dir: Path) -> list[str]:
    done: list[str] = []
    if stop_pid(pids.get("kubelet", -1), "kubelet"):
        done.append("stopped kubelet")
    done += _remove_pods(layout, bin_dir, pids)
    for name in ("kube-scheduler", "kube-controller-manager", "apiserver-relay", "containerd"):
        if stop_pid(pids.get(name, -1), name):
            done.append(f"stopped {name}")
    for pid in pids_matching(lambda argv: containerd.is_our_shim(argv, layout)):
        if stop_pid(pid, Path(containerd.cmdline_name(pid)).name, timeout=5):
            done.append(f"stopped shim {pid}")
    done += _kill_cgroup_members()
    done += _unmount(layout)
    done += [f"deleted netdev {d}" for d in cni.delete_bridge()]
    for controller in CGROUPS.iterdir() if CGROUPS.is_dir() else ():
        if (controller / CGROUP_ROOT).is_dir():
            remove_cgroup_tree(controller / CGROUP_ROOT)
            done.append(f"removed cgroup {controller / CGROUP_ROOT}")
    if layout.snapshot.exists():
        snap = HostSnapshot.load(layout.snapshot)
        done += [f"removed iptables chain {c}" for c in snap.restore_iptables()]
        done += [f"restored sysctl {s}" for s in snap.restore_sysctls()]
        done += [f"removed {p}" for p in snap.remove_created_paths()]
    shutil.rmtree(layout.kubelet_root, ignore_errors=True)
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    return done


def _remove_pods(layout: Layout, bin_dir: Path, pids: dict[str, int]) -> list[str]:
    """Stop and remove every sandbox through CRI (runs CNI DEL, unmounts, kills containers)."""
    if not alive(pids.get("containerd", -1), "containerd") or not layout.containerd_socket.exists():
        return []
    crictl = [str(bin_dir / "crictl"), f"--runtime-endpoint=unix://{layout.containerd_socket}", "--timeout=20s"]
    res = subprocess.run([*crictl, "pods", "-q"], capture_output=True, text=True, timeout=60)
    out = []
    for pod in res.stdout.split():
        subprocess.run([*crictl, "stopp", pod], capture_output=True, timeout=60)
        subprocess.run([*crictl, "rmp", "-f", pod], capture_output=True, timeout=60)
        out.append(f"removed pod sandbox {pod[:12]}")
    return out


def _kill_cgroup_members() -> list[str]:
    """SIGKILL whatever still runs in our cgroup tree (containers whose shim died)."""
    out = []
    for _ in range(3):
        found: set[int] = set()
        root = CGROUPS / "pids" / CGROUP_ROOT
        if not root.is_dir():
            root = CGROUPS / "memory" / CGROUP_ROOT
        for procs in root.rglob("cgroup.procs") if root.is_dir() else ():
            with contextlib.suppress(OSError, ValueError):
                found.update(int(x) for x in procs.read_text().split())
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            out.append(f"killed leftover pod process {pid}")
        time.sleep(0.5)
    return out


def _unmount(layout: Layout) -> list[str]:
    prefixes = [str(p) + "/" for p in (layout.state, layout.containerd_root, RUN_DIR)] + [
        "/run/netns/cni-", "/var/run/netns/cni-", "/run/containerd/"
    ]
    out = []
    for mnt in sorted((m for m in mounts() if m.startswith(tuple(prefixes))), key=len, reverse=True):
        res = subprocess.run(["umount", mnt], capture_output=True, timeout=30)
        if res.returncode != 0:
            res = subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=30)
        if res.returncode == 0:
            out.append(f"unmounted {mnt}")
        with contextlib.suppress(OSError):
            if Path(mnt).name.startswith("cni-") and Path(mnt).is_file():
                Path(mnt).unlink()
    return out
