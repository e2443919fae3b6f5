from __future__ import annotations

import pytest

from modelgate_dev.devcluster import K8sToolsError, find_bin_dir

from .helmtool import Helm


@pytest.fixture(scope="session")
def helm() -> Helm:
    try:
        bin_dir = find_bin_dir(("helm",))
    except K8sToolsError as e:
        pytest.fail(f"helm is unavailable (hack/k8s-tools.sh helm builds it):\n{e}", pytrace=False)
    return Helm(bin_dir / "helm")
