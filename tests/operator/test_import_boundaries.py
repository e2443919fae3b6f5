"""The operator loads the proxy's shared contract (``modelgate_proxy.spec``) and nothing of the proxy's runtime;
the ``only`` import-linter contract that says so can fail."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import grimp
import pytest

from modelgate_dev.importcontracts import OnlyContract

RUNTIME_LIBRARIES = ("botocore", "google.auth", "starlette", "uvicorn", "prometheus_client", "orjson")


def _modules_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout))


def test_importing_the_operator_loads_no_proxy_runtime() -> None:
    loaded = _modules_after("import modelgate_operator.handlers, modelgate_operator.cli")
    assert "modelgate_operator.reconcile" in loaded  # the import did happen
    proxy = {m for m in loaded if m == "modelgate_proxy" or m.startswith("modelgate_proxy.")}
    assert "modelgate_proxy.spec.capabilities" in proxy
    assert {m for m in proxy if m != "modelgate_proxy" and not m.startswith("modelgate_proxy.spec")} == set()
    assert [m for m in loaded if m.split(".")[0] in {"modelgate_dev", "openai", "cryptography", "httpx"}] == []
    assert [m for m in loaded if any(m == lib or m.startswith(lib + ".") for lib in RUNTIME_LIBRARIES)] == []


def test_the_operator_adds_no_aiohttp_module_beyond_what_kopf_itself_loads() -> None:
    """kopf's own API client is aiohttp; the operator's apply path (kubehttp) reuses it and adds nothing."""
    ours = {m for m in _modules_after("import modelgate_operator.handlers") if m.split(".")[0] == "aiohttp"}
    kopfs = {m for m in _modules_after("import kopf") if m.split(".")[0] == "aiohttp"}
    assert ours == kopfs


def _contract(**options: Any) -> OnlyContract:
    return OnlyContract(name="only", session_options={"root_packages": ["op", "px"]}, contract_options=options)


def _graph(*imports: tuple[str, str]) -> grimp.ImportGraph:
    graph = grimp.ImportGraph()
    for module in ("op", "op.a", "op.b", "px", "px.spec", "px.spec.m", "px.pipeline", "px.server"):
        graph.add_module(module)
    for importer, imported in imports:
        graph.add_import(importer=importer, imported=imported, line_number=1, line_contents=f"import {imported}")
    return graph


OPTIONS = {"source_modules": ["op"], "restricted_package": "px", "allowed_modules": ["px.spec"]}


def test_only_contract_keeps_imports_of_the_allowed_part() -> None:
    check = _contract(**OPTIONS).check(_graph(("op.a", "px.spec.m"), ("op.b", "op.a"), ("op.a", "px")), verbose=False)
    assert check.kept


@pytest.mark.parametrize(
    ("imports", "reached"),
    [
        ((("op.a", "px.pipeline"),), "px.pipeline"),  # direct
        ((("op.a", "px.spec.m"), ("px.spec.m", "px.server")), "px.server"),  # through the allowed part
        ((("op.b", "op.a"), ("op.a", "px.server")), "px.server"),  # through the operator itself
    ],
)
def test_only_contract_breaks_on_any_chain_into_the_rest(imports: tuple[tuple[str, str], ...], reached: str) -> None:
    check = _contract(**OPTIONS).check(_graph(*imports), verbose=False)
    assert not check.kept
    assert [b["module"] for b in check.metadata["broken"]] == [reached]
    assert check.metadata["broken"][0]["chain"][-1] == reached
