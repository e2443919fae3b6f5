"""A real single node for the dev cluster: containerd + runc, a CNI bridge inside the machine, kubelet,
kube-controller-manager and kube-scheduler, with a teardown that leaves the host as it found it.

``RealNode`` (node.py) starts and stops it; ``host.py`` records and restores what the node changes on the
host (sysctls, iptables chains, network devices, mounts, cgroups, directories); the other modules each
configure and run one component.
"""
