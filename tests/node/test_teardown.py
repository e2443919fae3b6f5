"""The node's teardown leaves the host as it found it: no process, mount, network device, iptables chain,
cgroup or changed sysctl (kubelet sets vm.overcommit_memory, kernel.panic, kernel.panic_on_oops; the CNI
bridge turns on IP forwarding)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from modelgate_dev.node import containerd, host
from modelgate_dev.node.cluster import NodeCluster
from modelgate_dev.node.layout import BRIDGE, CGROUP_NAMES, LOCK, RUN_DIR
from modelgate_dev.node.procs import alive, cmdline, pids_matching
from tests.plugins.node import node_bin_dir

POD = """
apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  terminationGracePeriodSeconds: 1
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 65532}
  containers:
  - name: c
    image: IMAGE
    imagePullPolicy: Never
    command: ["python3", "-c", "import time; time.sleep(3600)"]
    securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"""


@pytest.mark.node
def test_teardown_restores_the_host(pytestconfig: pytest.Config) -> None:
    bin_dir = node_bin_dir(pytestconfig)
    before = host.HostSnapshot.take(CGROUP_NAMES)
    state = Path(tempfile.mkdtemp(prefix="modelgate-node-"))
    nc = NodeCluster(state, bin_dir)
    try:
        nc.start()
        nc.cluster.kubectl("apply", "-f", "-", input=POD.replace("IMAGE", nc.node.images["proxy"].ref))
        nc.cluster.kubectl("wait", "pod/sleeper", "--for=condition=Ready", "--timeout=90s")
        running = dict(nc.node.pids)
        # while it runs, the node has changed the host (else this test could not fail)
        changed = before.leftovers(CGROUP_NAMES)
        assert any(BRIDGE in c for c in changed), changed
        assert any(c.startswith("iptables") and "KUBE-" in c for c in changed), changed
        assert any(c.startswith("cgroup") for c in changed), changed
        assert any(c.startswith("mount") for c in changed), changed
    finally:
        done = nc.stop()
        shutil.rmtree(state, ignore_errors=True)
    print("teardown:\n  " + "\n  ".join(done))
    assert not [n for n, pid in running.items() if alive(pid, n)]
    assert not pids_matching(lambda argv: containerd.is_our_shim(argv, nc.node.layout)), "containerd shims left"
    assert not any(a[:1] and "sleep(3600)" in " ".join(a) for a in map(cmdline, pids_matching(lambda a: True)))
    assert not RUN_DIR.exists()
    assert not LOCK.exists()
    assert before.leftovers(CGROUP_NAMES) == []
