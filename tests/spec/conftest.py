from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from modelgate_dev.devcluster import DevCluster


@pytest.fixture(scope="module")
def dry_run_namespace(k8s: DevCluster) -> Iterator[str]:
    """One namespace for a module's ``kubectl apply --dry-run=server`` calls (nothing is stored in it)."""
    name = f"t-dry-run-{secrets.token_hex(3)}"
    k8s.kubectl("create", "namespace", name)
    yield name
    k8s.kubectl("delete", "namespace", name, "--wait=false")
