"""One progress line per step, with the time it took, on stderr (builds and cluster starts are slow)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


def say(component: str, message: str) -> None:
    print(f"{component}: {message}", file=sys.stderr, flush=True)


@contextmanager
def step(component: str, what: str) -> Iterator[None]:
    """``with step("images", "debootstrap bookworm"):`` prints ``images: debootstrap bookworm ...`` and then
    ``images: debootstrap bookworm took 36.2s`` (or ``... failed after 3.0s``)."""
    say(component, f"{what} ...")
    started = time.monotonic()
    try:
        yield
    except BaseException:
        say(component, f"{what} failed after {time.monotonic() - started:.1f}s")
        raise
    say(component, f"{what} took {time.monotonic() - started:.1f}s")
