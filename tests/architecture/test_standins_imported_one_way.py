"""The provider stand-ins are imported one way, as ``tests.standins.<module>``: importing them also as
``standins.<module>`` would make two module objects (two sets of globals, two classes of the same name)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_tests_import_the_standins_as_tests_standins() -> None:
    offenders: list[str] = []
    checked = 0
    for path in TESTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] == "standins":
                    offenders.append(f"{path.relative_to(TESTS)}:{node.lineno}: {name}")
                elif name.startswith("tests.standins"):
                    checked += 1
    assert checked > 20
    assert not offenders, "import the stand-ins as tests.standins.<module>:\n" + "\n".join(offenders)
