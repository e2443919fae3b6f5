"""Fixtures of the operator tests: the operator process (as its ServiceAccount) and an admin client.
``namespace`` comes from ``tests/plugins/k8s.py`` (short enough for the operator's
client-certificate CN)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lightkube import Client

from modelgate_dev.devcluster import DevCluster

from .harness import OperatorProcess, admin_client, install_rbac


@pytest.fixture
def operator(k8s: DevCluster, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    kubeconfig = install_rbac(k8s, namespace)
    with OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log", "--log-format", "json") as op:
        yield op
    if "Traceback" in op.logs():
        print(op.logs()[-5000:])


@pytest.fixture
def client(k8s: DevCluster) -> Iterator[Client]:
    c = admin_client(k8s)
    yield c
    c.close()
