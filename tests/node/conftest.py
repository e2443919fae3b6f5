"""Fixtures of the real-node tests (the node itself comes from tests/plugins/node.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Write a measured figure to the terminal even when the test passes (pytest captures print)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def write(text: str) -> None:
        if reporter is not None:
            reporter.write_line(f"\n[{request.node.name}] {text}")
        else:
            print(text)

    return write
