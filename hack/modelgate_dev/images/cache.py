"""Where images are cached, and content keys: the hash of everything an image is built from."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
REGISTRY = "modelgate.local"
"""Image names are fully qualified under this (never pulled: nothing answers for it) so kubelet uses them as is."""


def cache_root() -> Path:
    base = os.environ.get("MODELGATE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "modelgate"
    )
    return Path(base)


def images_dir() -> Path:
    d = cache_root() / "images"
    d.mkdir(parents=True, exist_ok=True)
    return d


def content_key(*parts: bytes | str, files: Iterable[Path] = ()) -> str:
    """12 hex characters of SHA-256 over ``parts`` and the names and bytes of ``files`` (sorted)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big") + data)
    for f in sorted(set(files)):
        rel = str(f.relative_to(REPO_ROOT)) if f.is_relative_to(REPO_ROOT) else str(f)
        data = f.read_bytes()
        h.update(rel.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()[:12]


def source_files(*roots: str) -> list[Path]:
    """The files under ``roots`` (relative to the repository) that a ``COPY`` would send, minus caches."""
    out: list[Path] = []
    for root in roots:
        p = REPO_ROOT / root
        if p.is_file():
            out.append(p)
            continue
        for f in p.rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts and not f.name.endswith(".pyc"):
                out.append(f)
    return out
