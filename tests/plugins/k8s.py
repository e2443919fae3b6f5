"""pytest plugin: a real etcd + kube-apiserver (envtest-style) for tests that need Kubernetes.

Fixtures:
  ``k8s``        session-scoped :class:`DevCluster`, started lazily on first use, with every CRD in
                 ``crds/*.yaml`` applied (server-side) and Established; stopped at session end.
  ``namespace``  a fresh namespace per test; its custom resources are deleted afterwards (no garbage
                 collector runs, so the namespace itself stays Terminating - that is expected).
  ``k8s_bin``    the directory with etcd / kube-apiserver / kubectl (/ helm).

Tests using these fixtures are marked ``k8s`` automatically (``-m "not k8s"`` deselects them). The
binaries are built (minutes, once per machine) before the first test runs, outside the per-test
timeout. If they cannot be built the tests fail, unless MODELGATE_SKIP_K8S=1, which skips them.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelgate_dev.devcluster import DevCluster, DevClusterError, K8sToolsError, find_bin_dir

K8S_FIXTURES = frozenset({"k8s", "k8s_bin", "namespace"})
SKIP_ENV = "MODELGATE_SKIP_K8S"
_BIN_KEY = pytest.StashKey[Path | K8sToolsError]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "k8s: needs the real etcd + kube-apiserver control plane")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if K8S_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.k8s)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the binaries now (not inside a test's timeout) if any selected test needs them."""
    config = session.config
    if config.option.collectonly or not any(i.get_closest_marker("k8s") for i in session.items):
        return
    capman = config.pluginmanager.getplugin("capturemanager")
    try:
        if capman is not None:
            with capman.global_and_fixture_disabled():
                config.stash[_BIN_KEY] = find_bin_dir(("etcd", "kube-apiserver", "kubectl"))
        else:
            config.stash[_BIN_KEY] = find_bin_dir(("etcd", "kube-apiserver", "kubectl"))
    except K8sToolsError as e:
        config.stash[_BIN_KEY] = e


def _unavailable(reason: str) -> None:
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"Kubernetes binaries unavailable ({SKIP_ENV}=1): {reason}")
    pytest.fail(f"Kubernetes binaries unavailable (set {SKIP_ENV}=1 to skip instead):\n{reason}", pytrace=False)


@pytest.fixture(scope="session")
def k8s_bin(pytestconfig: pytest.Config) -> Path:
    found = pytestconfig.stash.get(_BIN_KEY, None)
    if found is None:
        try:
            found = find_bin_dir(("etcd", "kube-apiserver", "kubectl"))
        except K8sToolsError as e:
            found = e
        pytestconfig.stash[_BIN_KEY] = found
    if isinstance(found, K8sToolsError):
        _unavailable(str(found))
        raise AssertionError("unreachable")
    return found


@pytest.fixture(scope="session")
def k8s(k8s_bin: Path, pytestconfig: pytest.Config) -> Iterator[DevCluster]:
    cluster = DevCluster(bin_dir=k8s_bin)
    try:
        cluster.start()
    except DevClusterError as e:
        pytest.fail(f"could not start the dev cluster:\n{e}", pytrace=False)
    try:
        install_crds(cluster, pytestconfig.rootpath / "crds")
        yield cluster
    finally:
        cluster.stop()


def install_crds(cluster: DevCluster, crd_dir: Path) -> list[str]:
    """Server-side apply ``crd_dir/*.yaml`` and wait until every CRD in them is Established."""
    return cluster.install_crds(crd_dir)


NAMESPACE_BASE_MAX = 14
"""``t-<base>-<6 hex>`` is at most 23 characters, so ``system:serviceaccount:<ns>:modelgate-operator`` (the
operator's identity in the tests) fits a client certificate's 64-character CN."""


def namespace_name(test_name: str) -> str:
    """A fresh, short namespace name derived from the test's name."""
    base = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:NAMESPACE_BASE_MAX].strip("-") or "x"
    return f"t-{base}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(k8s: DevCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = namespace_name(request.node.name)
    k8s.kubectl("create", "namespace", name)
    yield name
    namespaced_crds = k8s.kubectl(
        "get", "crd", "-o", 'jsonpath={range .items[?(@.spec.scope=="Namespaced")]}{.metadata.name}{" "}{end}'
    ).stdout.split()
    if namespaced_crds:
        k8s.kubectl("delete", ",".join(namespaced_crds), "--all", "-n", name, "--wait=false", "--ignore-not-found")
    k8s.kubectl("delete", "namespace", name, "--wait=false")
