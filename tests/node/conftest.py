"""Fixtures of the real-node tests (the node itself comes from tests/plugins/node.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Write a measured figure to the terminal even when the test passes (pytest captures print)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")

    def write(text: str) -> None:
        print(text)  # also in the captured output of a failing test
        if reporter is not None and capman is not None:
            with capman.global_and_fixture_disabled():
                reporter.write_line(f"\n[{request.node.name}] {text}")

    return write
