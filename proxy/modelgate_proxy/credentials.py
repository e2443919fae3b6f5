"""Credentials at call time: ``{{secrets/<name>/<key>}}`` references read from a Secret-volume layout.

A reference resolves to the file ``<secrets-dir>/<name>/<key>`` (the layout of a Kubernetes Secret volume).
Kubernetes rotates a mounted Secret by swapping a ``..data`` symlink; every call stats the resolved path
(one cheap syscall, no read) and re-reads the file only when its inode, size or mtime changed, so the next
request after a rotation uses the new value without a restart.

Errors name the field and the reference, never a value.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from .errors import ProviderConfigError
from .spec import is_secret_ref, parse_secret_ref

_Stamp = tuple[int, int, int]  # (inode, size, mtime_ns)


class FileCredentials:
    """The :class:`~modelgate_proxy.providers.base.Credentials` implementation of the proxy."""

    __slots__ = ("_cache", "_paths", "secrets_dir")

    def __init__(self, secrets_dir: str | os.PathLike[str] | None) -> None:
        self.secrets_dir = Path(secrets_dir) if secrets_dir is not None else None
        self._cache: dict[str, tuple[_Stamp, str]] = {}
        # reference -> file path, parsed once: building a Path and matching the reference's pattern on every
        # request was ~5% of the proxy's CPU under load (bench/RESULTS.md); the stat stays per call.
        self._paths: dict[str, str] = {}

    def resolve(self, reference: str | None, plaintext: str | None, *, field: str) -> str:
        if reference is None:
            if plaintext is None:
                raise ProviderConfigError(f"no credential is configured for {field}")
            return plaintext
        cached = self._cache.get(reference)
        path = self._paths.get(reference)
        if path is None:
            path = self._paths[reference] = str(self._path(reference, field))
        try:
            st = os.stat(path)
        except OSError:
            raise ProviderConfigError(
                f"the credential {reference} for {field} is not available: no file {path}"
            ) from None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        value = self._read(Path(path), reference, field)
        self._cache[reference] = (stamp, value)
        return value

    def check(self, reference: str, *, field: str) -> None:
        """Raise :class:`ProviderConfigError` when ``reference`` cannot be resolved (used by /readyz)."""
        self.resolve(reference, None, field=field)

    def _path(self, reference: str, field: str) -> Path:
        if self.secrets_dir is None:
            raise ProviderConfigError(
                f"{field} refers to the credential {reference} but no secrets directory is configured "
                "(pass --secrets-dir, or give the value inline in the *Plaintext field)"
            )
        try:
            ref = parse_secret_ref(reference)
        except ValueError:
            raise ProviderConfigError(f"{field} is not a valid secret reference") from None
        return self.secrets_dir / ref.name / ref.key

    @staticmethod
    def _read(path: Path, reference: str, field: str) -> str:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ProviderConfigError(
                f"the credential {reference} for {field} cannot be read: {exc.strerror}"
            ) from None
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProviderConfigError(f"the credential {reference} for {field} is not UTF-8 text") from None
        # Secrets created from files often end with a newline; credentials never do.
        value = value.rstrip("\r\n")
        if not value:
            raise ProviderConfigError(f"the credential {reference} for {field} is empty")
        return value


def secret_references(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every ``(field path, reference)`` in a spec model tree (camelCase paths, for messages)."""
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        path = f"{prefix}.{info.alias or name}" if prefix else (info.alias or name)
        if isinstance(value, BaseModel):
            yield from secret_references(value, path)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from secret_references(item, f"{path}[{i}]")
        elif isinstance(value, str) and is_secret_ref(value):
            yield path, value
