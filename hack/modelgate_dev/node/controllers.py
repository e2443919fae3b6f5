"""kube-controller-manager and kube-scheduler for the dev node (loopback only, no leader election)."""

from __future__ import annotations

from pathlib import Path


def kcm_argv(exe: Path, kubeconfig: Path, port: int, sa_key: Path, root_ca: Path) -> list[str]:
    return [
        str(exe), f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}", f"--secure-port={port}", "--bind-address=127.0.0.1",
        "--leader-elect=false", f"--service-account-private-key-file={sa_key}", f"--root-ca-file={root_ca}",
        "--use-service-account-credentials=true", "--controllers=*,-bootstrapsigner,-tokencleaner",
        "--profiling=false", "--concurrent-deployment-syncs=10", "--concurrent-gc-syncs=10",
    ]  # fmt: skip


def scheduler_argv(exe: Path, kubeconfig: Path, port: int) -> list[str]:
    return [
        str(exe), f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}", f"--secure-port={port}", "--bind-address=127.0.0.1",
        "--leader-elect=false", "--profiling=false",
    ]  # fmt: skip
