"""No import cycle anywhere in the proxy or the operator, counting imports inside functions and
``TYPE_CHECKING`` blocks (a cycle hidden in a function is still a cycle)."""

from __future__ import annotations

import pytest

from .imports import PACKAGES, cycles, import_graph, modules


def test_the_graph_sees_every_module_and_its_imports() -> None:
    graph = import_graph()
    assert set(graph) == set(modules())
    assert "modelgate_proxy.errors" in graph["modelgate_proxy.server.app"]
    assert "modelgate_proxy.exchange" in graph["modelgate_proxy.stages.traffic_split"]
    assert sum(len(deps) for deps in graph.values()) > 100


def test_cycles_finds_a_cycle_of_three() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package", [
    "modelgate_proxy", "modelgate_operator"])
def test_no_import_cycles(package: str) -> None:
    assert package in PACKAGES
    found = [c for c in cycles(import_graph()) if c[0].split(".")[0] == package]
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)
