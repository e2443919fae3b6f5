"""In a pod the operator finds the API server as client-go does (KUBERNETES_SERVICE_HOST/_PORT), not by the
DNS name kopf assumes (a cluster without DNS, such as the real dev node, has no kubernetes.default.svc)."""

from __future__ import annotations

import pytest

from modelgate_operator.handlers import in_cluster_server


def test_server_from_service_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert in_cluster_server() == "https://10.96.0.1:443"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    assert in_cluster_server() == "https://[fd00::1]:443"


def test_no_env_keeps_kopfs_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert in_cluster_server() is None
