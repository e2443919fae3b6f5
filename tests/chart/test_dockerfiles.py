"""The images' build inputs (no container engine here): the entrypoints are the commands the tests run."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from modelgate_operator import render

from .dockerfile import Dockerfile, parse
from .helmtool import REPO_ROOT, Helm, container, one

OPERATOR = REPO_ROOT / "docker" / "operator.Dockerfile"
PROXY = REPO_ROOT / "docker" / "proxy.Dockerfile"
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|make|cmake|clang|cargo|rustc|git)\b")


@pytest.mark.parametrize("path", [OPERATOR, PROXY], ids=["operator", "proxy"])
def test_multi_stage_pinned_slim_non_root(path: Path) -> None:
    df = parse(path)
    assert len(df.stages) >= 2, "multi-stage: build tools stay in the build stage"
    for stage in df.stages:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", stage.base), stage.base
    final = df.final
    user = final.last("USER")
    assert user is not None, "the final stage must set USER"
    uid = user.split(":")[0]
    assert uid.isdigit(), "numeric UID, so runAsNonRoot can verify it"
    assert int(uid) != 0
    assert all(g != "0" for g in user.split(":")[1:])
    for run in final.all("RUN"):
        assert not BUILD_TOOLS.search(run), f"build tool in the final stage: {run}"
        assert "apt-get install" not in run
    copies = final.all("COPY")
    assert copies, "the final stage copies the virtualenv from the build stage"
    assert all(c.startswith("--from=") for c in copies), "only build-stage output reaches the final image"
    assert any(BUILD_TOOLS.search(run) for s in df.stages[:-1] for run in s.all("RUN"))  # they live here


def _scripts() -> dict[str, str]:
    return dict(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def test_proxy_entrypoint_is_the_command_the_operator_renders() -> None:
    df: Dockerfile = parse(PROXY)
    assert df.exec_form("ENTRYPOINT") + df.exec_form("CMD") == render.proxy_command()
    assert df.exec_form("ENTRYPOINT")[0] in _scripts()
    assert df.final.last("USER") == f"{render.PROXY_UID}:{render.PROXY_UID}"  # the proxy pod's runAsUser


def test_operator_entrypoint_is_the_command_the_chart_renders(helm: Helm) -> None:
    df = parse(OPERATOR)
    deployment = one(helm.template(), "Deployment")
    c = container(deployment)
    assert c["command"] == df.exec_form("ENTRYPOINT")
    assert df.exec_form("ENTRYPOINT")[0] in _scripts()
    assert c["args"][0] == df.exec_form("CMD")[0] == "run"
    uid = str(deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"])
    assert df.final.last("USER") == f"{uid}:{uid}"  # the chart's runAsUser is the image's user


def test_image_commands_parse_with_the_real_clis(helm: Helm, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the images run is accepted by the CLIs the console scripts point at (no typo'd flag)."""
    import argparse

    from modelgate_operator import cli as operator_cli
    from modelgate_proxy import cli as proxy_cli

    proxy = parse(PROXY)
    argv = proxy.exec_form("ENTRYPOINT")[1:] + proxy.exec_form("CMD")
    args = proxy_cli.build_parser().parse_args(argv)
    assert args.files == ["/etc/modelgate/endpoint.yaml"]
    assert (args.host, args.port) == ("0.0.0.0", 8080)

    assert _scripts()["modelgate-operator"] == "modelgate_operator.cli:main"
    parsed: list[argparse.Namespace] = []
    monkeypatch.setattr(operator_cli, "run", lambda a: parsed.append(a) or 0)
    rendered = container(one(helm.template({"watch.namespaces": ["a", "b"], "replicaCount": 2}), "Deployment"))
    assert operator_cli.main(parse(OPERATOR).exec_form("CMD")) == 0
    assert operator_cli.main(rendered["args"]) == 0
    assert parsed[0].all_namespaces is True
    assert parsed[1].namespace == ["a", "b"]
    assert parsed[1].peering == "mg-modelgate"
    assert parsed[1].proxy_replicas == 1
    with pytest.raises(SystemExit):  # and it does reject what it does not know
        operator_cli.main(["run", "--all-namespaces", "--no-such-flag"])


# ------------------------------------------------------------------------------ runtime packages, no dev tooling
DEV_MODULES = {"devcluster", "devcluster_pki", "localdev", "crdgen", "chartcrds", "importcontracts"}
RUNTIME_SOURCES = {"pyproject.toml", "README.md", "proxy", "operator"}


def _runtime_trees_hold_no_dev_module() -> None:
    for tree in ("proxy", "operator"):
        found = [p for p in (REPO_ROOT / tree).rglob("*.py") if p.stem in DEV_MODULES or "modelgate_dev" in p.parts]
        assert found == [], f"dev tooling inside {tree}/: {found}"


@pytest.mark.parametrize("path", [OPERATOR, PROXY], ids=["operator", "proxy"])
def test_images_copy_only_the_runtime_packages(path: Path) -> None:
    sources = [
        src
        for stage in parse(path).stages
        for copy in stage.all("COPY")
        if not copy.startswith("--from=")
        for src in copy.split()[:-1]
    ]
    assert "proxy" in sources
    assert "operator" in sources
    assert set(sources) <= RUNTIME_SOURCES, f"{path.name} copies {set(sources) - RUNTIME_SOURCES}"
    _runtime_trees_hold_no_dev_module()
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert "hack" in ignored  # not even in the build context
    assert "tests" in ignored


def test_the_wheel_holds_the_runtime_packages_and_no_dev_module(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(REPO_ROOT)], check=True, timeout=300)  # fmt: skip
    (wheel,) = tmp_path.glob("modelgate-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"modelgate_proxy", "modelgate_operator", wheel.name.split("-py")[0] + ".dist-info"}
    modules = {Path(n).stem for n in names if n.endswith(".py")}
    assert {"handlers", "reconcile", "crd", "capabilities"} <= modules  # the runtime is there ...
    assert modules & DEV_MODULES == set()  # ... and no dev tool
    _runtime_trees_hold_no_dev_module()
