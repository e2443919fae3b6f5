"""Small modules: none over 400 lines in the runtime packages (proxy/ and operator/)."""

from __future__ import annotations

import pytest

from .imports import modules

MAX_LINES = 400

@pytest.mark.parametrize("package", [
    "modelgate_proxy", "modelgate_operator"])
def test_no_module_over_400_lines(package: str) -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()
             if name.split(".")[0] == package}
    assert len(sizes) > 10
    too_long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"
