"""The dev control plane with a real node: ``DevCluster`` (etcd + kube-apiserver) + :class:`RealNode`.

    with NodeCluster(state_dir, bin_dir) as nc:      # prepare() gives bin_dir
        nc.cluster.kubectl("get", "pods", "-A")

``stop()`` tears the node down first (restoring the host), then the control plane.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType

from ..devcluster import DevCluster
from ..timing import say
from .layout import GATEWAY
from .node import RealNode


class NodeCluster:
    def __init__(self, state_dir: Path, bin_dir: Path, *, detached: bool = False) -> None:
        self.state_dir = Path(state_dir)
        self.node = RealNode(self.state_dir / "node", bin_dir)
        self.cluster = DevCluster(self.state_dir / "control-plane", bin_dir=bin_dir, detached=detached,
                                  extra_apiserver_args=self.node.apiserver_args(), service_accounts=True,
                                  serving_ips=[str(GATEWAY)])  # fmt: skip

    def start(self) -> NodeCluster:
        started = time.monotonic()
        self.cluster.start()
        say("node", f"control plane up in {time.monotonic() - started:.1f}s ({self.cluster.server})")
        try:
            self.node.start(self.cluster)
        except BaseException:
            self.cluster.stop()
            raise
        say("node", f"cluster with a Ready node in {time.monotonic() - started:.1f}s")
        return self

    @classmethod
    def attach(cls, state_dir: Path, bin_dir: Path) -> NodeCluster:
        """A handle on a node cluster started (detached) from ``state_dir`` by another process."""
        nc = cls.__new__(cls)
        nc.state_dir = Path(state_dir)
        nc.cluster = DevCluster.attach(nc.state_dir / "control-plane")
        nc.node = RealNode.attach(nc.state_dir / "node", bin_dir)
        return nc

    def running(self) -> bool:
        return self.cluster.running() and self.node.running()

    def stop(self) -> list[str]:
        try:
            return self.node.stop()
        finally:
            self.cluster.stop()

    def __enter__(self) -> NodeCluster:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
