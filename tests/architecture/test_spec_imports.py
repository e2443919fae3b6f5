"""The spec models (and the Databricks converter beside them) are the contract the operator shares: they import
only pydantic and the standard library, so importing them loads none of the proxy's runtime."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

from .imports import ROOT, modules

ALLOWED_THIRD_PARTY = {"pydantic", "pydantic_core"}


def _top_level_imports(path_text: str, module: str) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path_text)):
        if isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_spec_imports_only_pydantic_the_stdlib_and_itself() -> None:
    spec = {name: path for name, path in modules().items() if name.startswith("modelgate_proxy.spec")}
    assert "modelgate_proxy.spec.databricks_bodies.core" in spec
    for name, path in spec.items():
        text = path.read_text()
        for top in _top_level_imports(text, name):
            assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY, f"{name} imports {top}"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.level:
                depth = name.count(".") - (0 if path.name == "__init__.py" else 1) - (node.level - 1)
                assert depth >= 1, f"{name} imports {'.' * node.level}{node.module or ''} from outside the spec"


def test_importing_the_spec_loads_no_runtime_module() -> None:
    code = ("import sys, modelgate_proxy.spec, modelgate_proxy.spec.databricks_bodies; "
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'aiohttp', 'starlette', 'uvicorn', 'orjson', 'yaml', 'botocore', 'google', 'prometheus_client'} "
            "or (m.startswith('modelgate_proxy.') and not m.startswith('modelgate_proxy.spec')))))")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "proxy")}  # this tree's sources, whatever the venv points at
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env=env).stdout.split()
    assert loaded == []
