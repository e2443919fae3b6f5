"""End-to-end on kind: build the two images, load them into a kind cluster, `helm install` the chart, apply a
sample ServingEndpoint and wait until the real kubelet runs its proxy and the endpoint is Ready.

This is docs/install.md's quickstart, run as a test wherever `kind` and a container engine (docker or podman)
exist. The real-API-server suite (tests/chart, tests/operator) stays the gate on machines without them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelgate_dev.devcluster import K8sToolsError, find_bin_dir

REPO = Path(__file__).resolve().parents[2]
TAG = "e2e"
IMAGES = {"operator": f"modelgate-operator:{TAG}", "proxy": f"modelgate-proxy:{TAG}"}


def _engine() -> str | None:
    for engine in ("docker", "podman"):
        path = shutil.which(engine)
        if path and subprocess.run([path, "info"], capture_output=True, timeout=30).returncode == 0:
            return path
    return None


def _why_not() -> str | None:
    if shutil.which("kind") is None:
        return "no `kind` on PATH (install kind and a container engine to run the kind end-to-end test)"
    if _engine() is None:
        return "no working container engine (`docker info` / `podman info` failed), so no kind cluster can run"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")]


def run(*cmd: str, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.fixture(scope="module")
def kind_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    engine = _engine()
    assert engine is not None
    try:
        bin_dir = find_bin_dir(("kubectl", "helm"))
    except K8sToolsError as e:
        pytest.fail(str(e))
    name = f"modelgate-e2e-{secrets.token_hex(3)}"
    kubeconfig = tmp_path_factory.mktemp("kind") / "kubeconfig"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    if engine.endswith("podman"):
        env["KIND_EXPERIMENTAL_PROVIDER"] = "podman"
    for component, image in IMAGES.items():
        run(engine, "build", "-f", f"docker/{component}.Dockerfile", "-t", image, ".", env=env)
    run("kind", "create", "cluster", "--name", name, "--wait", "120s", env=env)
    try:
        for image in IMAGES.values():
            run("kind", "load", "docker-image", image, "--name", name, env=env)
        yield env
    finally:
        run("kind", "delete", "cluster", "--name", name, env=env)


def test_quickstart_on_kind(kind_cluster: dict[str, str]) -> None:
    env = kind_cluster
    run(
        "helm", "install", "modelgate", "charts/modelgate", "--namespace", "modelgate-system", "--create-namespace",
        "--set", f"image.repository=modelgate-operator,image.tag={TAG}",
        "--set", f"proxy.image.repository=modelgate-proxy,proxy.image.tag={TAG}",
        "--set", "watch.scope=cluster", "--wait", "--timeout", "5m", env=env,
    )  # fmt: skip
    run("kubectl", "create", "namespace", "demo", env=env)
    run("kubectl", "-n", "demo", "create", "secret", "generic", "openai", "--from-literal=api-key=sk-e2e", env=env)
    run("kubectl", "-n", "demo", "apply", "--server-side", "-f", "samples/openai-chat.yaml", env=env)
    run("kubectl", "-n", "demo", "wait", "servingendpoint/openai-chat", "--for=condition=Ready", "--timeout=300s",
        env=env)  # fmt: skip
    out = run("kubectl", "-n", "demo", "get", "se", env=env)
    assert "openai-chat" in out
    assert "True" in out
    run("helm", "uninstall", "modelgate", "--namespace", "modelgate-system", "--wait", env=env)
