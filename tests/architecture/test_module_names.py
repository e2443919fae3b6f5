"""Names that say one thing each: no two modules (or packages) of one package share a name, so
``validation``/``status``/``base`` always mean one module."""

from __future__ import annotations

from collections import defaultdict

import pytest

from .imports import PACKAGES, modules


def duplicates(names: list[str]) -> dict[str, list[str]]:
    by_last: dict[str, list[str]] = defaultdict(list)
    for name in names:
        by_last[name.rpartition(".")[2]].append(name)
    return {last: sorted(full) for last, full in by_last.items() if len(full) > 1 and last != "__main__"}


def test_duplicates_finds_two_modules_of_the_same_name() -> None:
    assert duplicates(["p.a.base", "p.b.base", "p.c"]) == {"base": ["p.a.base", "p.b.base"]}


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_two_modules_share_a_name(package: str) -> None:
    names = [name for name in modules() if name.startswith(package + ".")]
    assert len(names) > 10
    assert not duplicates(names)
