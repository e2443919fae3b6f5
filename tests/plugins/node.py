"""pytest plugin: the dev cluster with a real node (containerd, kubelet, kube-controller-manager,
kube-scheduler) for end-to-end tests of real pods from images built here.

Fixtures:
  ``node_cluster``    module-scoped :class:`NodeCluster` (~10 s to start from cached binaries and images),
                      CRDs installed; torn down after the module (and at exit, should the session die),
                      which restores the host. One node per machine: a module may also start its own.
  ``node_namespace``  a fresh namespace in it per test, deleted afterwards (the real garbage collector and
                      namespace controller run here, so it goes away with its pods).

Tests using them are marked ``node``. Preparation (Debian packages, the node's binaries, the images: minutes
the first time, cached after) runs before the first test, outside the per-test timeout, and prints its
duration. The tests are skipped, with the reason printed, only when the node cannot run here (not Linux, not
root, no apt or Go), when another live dev node holds the machine's node lock, or with MODELGATE_SKIP_NODE=1.
On a machine that can run it, a failed build or install, or a node that does not start, FAILS them with the
error.
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
from modelgate_dev.node.node import NodeBusy
from modelgate_dev.node.prepare import NodeUnavailable, prepare
from modelgate_dev.node.procs import NodeError

NODE_FIXTURES = frozenset({"node_cluster", "node_namespace"})
SKIP_ENV = "MODELGATE_SKIP_NODE"


class Skip(str):
    """Why the node cannot run here (the tests skip)."""


class Failed(str):
    """Why preparing the node failed on a machine that can run it (the tests fail)."""


_PREP = pytest.StashKey[Path | Skip | Failed]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "node: needs the real dev node (containerd + kubelet, images built here)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if NODE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.node)


def _prepare() -> Path | Skip | Failed:
    if os.environ.get(SKIP_ENV) == "1":
        return _say(Skip(f"{SKIP_ENV}=1"))
    started = time.monotonic()
    try:
        bin_dir = prepare()
    except NodeUnavailable as e:
        return _say(Skip(str(e)))
    except NodeError as e:
        return _say(Failed(f"{e}\n(after {time.monotonic() - started:.1f}s)"))
    print(f"node: binaries, packages and images prepared in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return bin_dir


def _say(outcome: Skip | Failed) -> Skip | Failed:
    if isinstance(outcome, Failed):
        print(f"node: preparing the real dev node FAILED, the node tests will fail:\n{outcome}", file=sys.stderr)
    else:
        print(f"node: the real-node tests are SKIPPED: {outcome}", file=sys.stderr)
    return outcome


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
    """The prepared bin directory; skips the test when the node cannot run here, fails it when preparing failed."""
    prepared = config.stash.get(_PREP, None)
    if prepared is None:
        prepared = config.stash[_PREP] = _prepare()
    if isinstance(prepared, Failed):
        pytest.fail(f"preparing the real dev node failed: {prepared}", pytrace=False)
    if isinstance(prepared, Skip):
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
    except NodeBusy as e:
        stop()
        print(f"node: the real-node tests of this module are SKIPPED: {e}", file=sys.stderr)
        pytest.skip(f"another dev node holds this machine: {e}")
    except (NodeError, DevClusterError) as e:
        stop()
        pytest.fail(f"the real dev node did not start: {e}", pytrace=False)
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
