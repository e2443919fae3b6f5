"""pytest plugin: the dev cluster with a real node (containerd, kubelet, kube-controller-manager,
kube-scheduler) for end-to-end tests of real pods from images built here.

Fixtures:
  ``node_cluster``    module-scoped :class:`NodeCluster` (~10 s to start from cached binaries and images),
                      CRDs installed; torn down after the module (and at exit, should the session die),
                      which restores the host. One node per machine: a module may also start its own.
  ``node_namespace``  a fresh namespace in it per test, deleted afterwards (the real garbage collector and
                      namespace controller run here, so it goes away with its pods).

Tests using them are marked ``node``. Preparation (Debian packages, the node's binaries, the images: minutes
the first time, cached after) runs before the first test, outside the per-test timeout. When the node cannot
run here (not root, not Linux, a build fails, another dev node runs, MODELGATE_SKIP_NODE=1) the tests are
skipped with the reason.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelgate_dev.devcluster import DevClusterError
from modelgate_dev.node.cluster import NodeCluster
from modelgate_dev.node.prepare import prepare
from modelgate_dev.node.procs import NodeError

NODE_FIXTURES = frozenset({"node_cluster", "node_namespace"})
SKIP_ENV = "MODELGATE_SKIP_NODE"
_PREP = pytest.StashKey[Path | str]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "node: needs the real dev node (containerd + kubelet, images built here)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if NODE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.node)


def _prepare() -> Path | str:
    if os.environ.get(SKIP_ENV) == "1":
        return f"{SKIP_ENV}=1"
    started = time.monotonic()
    try:
        bin_dir = prepare()
    except NodeError as e:
        return str(e)
    print(f"node: prepared in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return bin_dir


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if config.option.collectonly or not any(i.get_closest_marker("node") for i in session.items):
        return
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        with capman.global_and_fixture_disabled():
            config.stash[_PREP] = _prepare()
    else:
        config.stash[_PREP] = _prepare()


def node_bin_dir(config: pytest.Config) -> Path:
    """The prepared bin directory, or skip the test with the reason the node cannot run here."""
    prepared = config.stash.get(_PREP, None)
    if prepared is None:
        prepared = config.stash[_PREP] = _prepare()
    if isinstance(prepared, str):
        pytest.skip(f"the real dev node cannot run here: {prepared}")
    return prepared


@pytest.fixture(scope="module")
def node_cluster(pytestconfig: pytest.Config) -> Iterator[NodeCluster]:
    state = Path(tempfile.mkdtemp(prefix="modelgate-node-"))
    nc = NodeCluster(state, node_bin_dir(pytestconfig))
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            nc.stop()

    atexit.register(stop)  # also when the session dies between here and the finalizer
    try:
        nc.start()
    except (NodeError, DevClusterError) as e:
        stop()
        pytest.skip(f"the real dev node did not start: {e}")
    try:
        nc.cluster.install_crds(pytestconfig.rootpath / "crds")
        yield nc
    finally:
        stop()
        atexit.unregister(stop)
        leftovers = nc.node.leftovers()
        if leftovers:
            print("node: teardown left " + "; ".join(leftovers), file=sys.stderr)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def node_namespace(node_cluster: NodeCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"n-{request.node.name[5:17].lower().replace('_', '-').strip('-')}-{secrets.token_hex(3)}"
    node_cluster.cluster.kubectl("create", "namespace", name)
    yield name
    node_cluster.cluster.kubectl("delete", "namespace", name, "--wait=false")
