"""Dev tooling, never shipped: not in the wheel, not in any image (tests/chart/test_dockerfiles.py checks both).

- ``devcluster`` / ``devcluster_pki``: a throw-away local control plane (etcd + kube-apiserver) and its PKI;
- ``node``: the dev cluster's real node (containerd, CNI bridge, kubelet, controller-manager, scheduler) and
  the teardown that restores the host; ``images``: the images it runs, built here;
- ``localdev``: ``make up`` / ``make down`` orchestration (on the real node), ``background``: its helpers;
- ``crdgen`` / ``chartcrds``: write and check the repository's copies of the CRDs (``make crd``);
- ``importcontracts``: the import-linter contract type "this package imports only that part of another".

It may import anything the dev extra installs (``openai``, ``cryptography``, ``httpx``); the runtime packages
``modelgate_proxy`` and ``modelgate_operator`` never import it (an import-linter contract checks it).
"""
