"""Everything a node needs before it can start, installed or built on first use, with the reason when it
cannot be: root, Linux cgroups, the Debian packages (hack/node-packages.sh), the node's Kubernetes binaries
(hack/k8s-tools.sh node) and the images (modelgate_dev.images).

Two kinds of failure: :class:`NodeUnavailable` (this machine cannot run the node at all: not Linux, not root, no
apt or Go; the scripts say so with exit code 3), and :class:`NodeBuildFailed` (it could, but a build or install
failed: a bug to see, not a reason to skip)."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from pathlib import Path

from ..images import build as images
from ..images.cache import REPO_ROOT
from ..timing import say, step
from .procs import NodeError

NODE_TOOLS = ("etcd", "kube-apiserver", "kubectl", "helm", "kubelet", "kube-controller-manager", "kube-scheduler",
              "crictl")  # fmt: skip


class NodeUnavailable(NodeError):
    """This machine cannot run the dev node (the message says why)."""


class NodeBuildFailed(NodeError):
    """This machine can run the dev node, but installing or building what it needs failed (the message has the
    failing step's output)."""


CANNOT_HERE = 3
"""Exit code of hack/node-packages.sh and hack/k8s-tools.sh for "cannot be had on this machine"."""


def host_problem() -> str | None:
    if sys.platform != "linux":
        return f"the dev node needs Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "the dev node needs root (containerd, kubelet, the CNI bridge)"
    if not Path("/sys/fs/cgroup").is_dir():
        return "no /sys/fs/cgroup"
    return None


def _run(what: str, argv: list[str]) -> str:
    tail: collections.deque[str] = collections.deque(maxlen=30)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    assert proc.stderr is not None
    assert proc.stdout is not None
    for line in proc.stderr:  # relay progress lines, keep the tail for the error
        tail.append(line)
        if line.startswith(("k8s-tools:", "node-packages:")):
            print(line, end="", file=sys.stderr, flush=True)
    out = proc.stdout.read()
    if proc.wait() == CANNOT_HERE:
        raise NodeUnavailable(f"{what}: {''.join(tail).strip()}")
    if proc.returncode != 0:
        raise NodeBuildFailed(f"{what} failed (exit {proc.returncode}):\n{''.join(tail)}")
    return out


def prepare() -> Path:
    """Install/build what is missing; returns the Kubernetes bin directory. Raises :class:`NodeUnavailable` or
    :class:`NodeBuildFailed`."""
    problem = host_problem()
    if problem:
        raise NodeUnavailable(problem)
    with step("node", "Debian packages (containerd, runc, CNI plugins, debootstrap, docker.io)"):
        _run("hack/node-packages.sh", ["bash", str(REPO_ROOT / "hack" / "node-packages.sh")])
    with step("node", "Kubernetes binaries (hack/k8s-tools.sh node)"):
        out = _run("hack/k8s-tools.sh node", ["bash", str(REPO_ROOT / "hack" / "k8s-tools.sh"), "node"])
    bin_dir = Path(out.strip().splitlines()[-1])
    with step("node", "images"):
        try:
            images.ensure_built()
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            raise NodeBuildFailed(f"building the images failed: {e}") from e
    say("node", f"ready to start (binaries in {bin_dir})")
    return bin_dir
