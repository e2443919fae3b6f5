"""API-key records from Secret manifests: parsing one Secret, and a file or directory of them with reload.

The manifest (what ``apikey_mint`` prints and ``kubectl apply`` creates, one Secret per key in the endpoint's
namespace)::

    apiVersion: v1
    kind: Secret
    type: serving.modelgate.io/api-key
    metadata:
      name: modelgate-api-key-<id>
      labels: {serving.modelgate.io/api-key: "true"}
    stringData: {id: <id>, sha256: <hex>, principal: alice@example.com, kind: user, groups: "ds,ml", expires: ...}

(``data`` with base64 values, as the API server returns a Secret, is read as well.) :class:`ApiKeyDirectory` reads
the same manifests from a file or a directory of ``*.yaml``/``*.yml``/``*.json`` files (``modelgate serve``), and
polls it every ``interval`` seconds: a changed, added or deleted file is reloaded, so deleting a key's file revokes
it within ``interval`` plus one reload. A malformed file is skipped with a warning naming the file (never a value);
the others stay in force. File IO runs in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import errno
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from .apikeys import LABEL, ApiKeyRecord, ApiKeyStore, InvalidApiKeyRecord, record_from_fields

log = logging.getLogger("modelgate.identity")

MAX_FILE = 64 * 1024
"""Largest manifest file read."""
MAX_FILES = 10_000
MAX_KEYS = 10_000
"""Most records loaded; the rest are refused with a warning."""
_SUFFIXES = (".yaml", ".yml", ".json")

_Signature = tuple[tuple[str, int, int, int], ...]


def record_from_secret(secret: Mapping[str, Any], *, source: str = "") -> ApiKeyRecord | None:
    """The record a Secret describes; ``None`` if it is not labelled as an API key; malformed ones raise
    :class:`InvalidApiKeyRecord`."""
    if secret.get("kind") != "Secret":
        return None
    meta = secret.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if not isinstance(labels, dict) or str(labels.get(LABEL, "")).lower() != "true":
        return None
    if not source and isinstance(meta, dict):
        source = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    fields: dict[str, str] = {}
    data = secret.get("data")
    if isinstance(data, dict):
        for k, v in data.items():
            try:
                fields[str(k)] = base64.b64decode(str(v), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise InvalidApiKeyRecord(f"data.{k} is not base64 of UTF-8 text") from None
    string_data = secret.get("stringData")
    if isinstance(string_data, dict):
        fields.update({str(k): str(v) for k, v in string_data.items()})
    return record_from_fields(fields, source=source)


def _files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for entry in sorted(root.iterdir()):
        if not entry.name.startswith(".") and entry.suffix in _SUFFIXES and entry.is_file():
            yield entry


def signature(root: Path) -> _Signature:
    """What changes when a file is added, deleted, replaced or rewritten."""
    out = []
    for path in _files(root):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        out.append((path.name, st.st_mtime_ns, st.st_size, st.st_ino))
        if len(out) > MAX_FILES:
            break
    return tuple(out)


def load(root: Path) -> list[ApiKeyRecord]:
    """Every valid record under ``root``; a key id found twice is refused in both places (it is ambiguous)."""
    records: dict[str, ApiKeyRecord] = {}
    duplicated: set[str] = set()
    for n, path in enumerate(_files(root)):
        if n >= MAX_FILES:
            log.warning("API keys: more than %d files under %s; the rest are ignored", MAX_FILES, root)
            break
        for record in _load_file(path):
            if record.key_id in records or record.key_id in duplicated:
                log.warning("API keys: key id %s appears more than once (%s); refused", record.key_id, path.name)
                records.pop(record.key_id, None)
                duplicated.add(record.key_id)
            elif len(records) >= MAX_KEYS:
                log.warning("API keys: more than %d keys; %s ignored", MAX_KEYS, path.name)
            else:
                records[record.key_id] = record
    return list(records.values())


def _load_file(path: Path) -> list[ApiKeyRecord]:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE + 1)
    except OSError as e:
        log.warning("API keys: cannot read %s: %s", path.name, e.strerror)
        return []
    if len(raw) > MAX_FILE:
        log.warning("API keys: %s is larger than %d bytes; skipped", path.name, MAX_FILE)
        return []
    out = []
    try:
        for n, doc in enumerate(yaml.safe_load_all(raw)):
            if isinstance(doc, dict):
                record = record_from_secret(doc, source=f"{path.name}#{n}")
                if record is not None:
                    out.append(record)
    except yaml.YAMLError:
        log.warning("API keys: %s is not YAML; skipped", path.name)
        return []
    except InvalidApiKeyRecord as e:
        log.warning("API keys: %s is not a valid API-key Secret (%s); skipped", path.name, e)
        return []
    return out


class ApiKeyDirectory:
    """Keeps an :class:`ApiKeyStore` equal to the manifests under ``root``, polling every ``interval`` seconds."""

    def __init__(self, root: Path, store: ApiKeyStore | None = None, *, interval: float = 1.0) -> None:
        if not 0.05 <= interval <= 60:
            raise ValueError("the API-key reload interval must be between 0.05 and 60 seconds")
        self.root = root
        self.store = store or ApiKeyStore()
        self.interval = interval
        self._signature: _Signature | None = None
        self._task: asyncio.Task[None] | None = None

    def reload_now(self) -> bool:
        """Reload if anything changed (blocking: call in a thread once the loop runs); whether it reloaded."""
        if not self.root.exists():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(self.root))
        sig = signature(self.root)
        if sig == self._signature:
            return False
        self.store.replace(load(self.root))
        self._signature = sig
        log.info("API keys: %d loaded from %s", len(self.store), self.root)
        return True

    async def start(self) -> None:
        await asyncio.to_thread(self.reload_now)
        self._task = asyncio.create_task(self._poll(), name="api-key-reload")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self.reload_now)
            except OSError as e:  # the directory vanished: nothing under it is valid any more
                log.warning("API keys: cannot read %s (%s); no key is accepted", self.root, e.strerror or e)
                self.store.replace(())
                self._signature = None
