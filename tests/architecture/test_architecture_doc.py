"""docs/architecture.md matches the tree: every module it names exists (a dotted name may end in a name the
module defines), every path it names exists, and it names every top-level module and package of the proxy."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .imports import ROOT, modules

DOC = ROOT / "docs" / "architecture.md"
DOTTED = re.compile(r"\bmodelgate_(?:proxy|operator|dev)(?:\.\w+)*")
PATH = re.compile(r"\b(?:proxy|operator|tests|bench|hack|docs|charts|crds)/[\w./-]*\w")


def _defines(path_text: str, name: str) -> bool:
    for node in ast.parse(path_text).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return True
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
        if isinstance(node, ast.ImportFrom | ast.Import) and any((a.asname or a.name) == name for a in node.names):
            return True
    return False


def names_in_doc(text: str) -> tuple[set[str], set[str]]:
    return set(DOTTED.findall(text)), set(PATH.findall(text))


def _all_modules() -> dict[str, Path]:
    """The runtime packages' modules and the dev package's (hack/modelgate_dev)."""
    out = modules()
    dev = ROOT / "hack" / "modelgate_dev"
    for path in sorted(dev.rglob("*.py")):
        parts = ["modelgate_dev", *path.relative_to(dev).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def missing(text: str) -> list[str]:
    mods = _all_modules()
    out: list[str] = []
    dotted, paths = names_in_doc(text)
    for name in sorted(dotted):
        if name in mods:
            continue
        parent, _, attr = name.rpartition(".")
        if parent in mods and _defines(mods[parent].read_text(), attr):
            continue
        out.append(name)
    out += [p for p in sorted(paths) if not (ROOT / p).exists()]
    return out


def test_every_module_and_path_the_page_names_exists() -> None:
    text = DOC.read_text()
    dotted, paths = names_in_doc(text)
    assert len(dotted) > 30
    assert len(paths) > 3
    assert not missing(text), f"docs/architecture.md names what does not exist: {missing(text)}"


def test_the_check_catches_a_name_that_does_not_exist() -> None:
    assert missing("`modelgate_proxy.pipeline` and `modelgate_proxy.exchange.Nope` and proxy/modelgate_proxy/x.py") \
        == ["modelgate_proxy.exchange.Nope", "modelgate_proxy.pipeline", "proxy/modelgate_proxy/x.py"]
    assert missing("`modelgate_proxy.exchange.Pipeline`, `modelgate_proxy.stages.identity`") == []


def test_the_page_names_every_top_level_module_and_package_of_the_proxy() -> None:
    dotted, _ = names_in_doc(DOC.read_text())
    top = {".".join(name.split(".")[:2]) for name in modules() if name.startswith("modelgate_proxy.")}
    assert "modelgate_proxy.exchange" in top
    assert not top - dotted, f"docs/architecture.md does not name {sorted(top - dotted)}"
