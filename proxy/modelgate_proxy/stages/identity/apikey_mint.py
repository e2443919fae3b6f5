"""Minting an API key: a new random key and the Secret manifest that holds only its hash.

The key is shown once, to whoever mints it; the manifest is what gets applied. The command is
``modelgate api-key create`` (:mod:`modelgate_proxy.cli.api_key`)::

    modelgate api-key create -n team-a --principal alice@example.com --group data-scientists | kubectl apply -f -

prints the manifest on stdout and the key on stderr (once; it is not recoverable from the Secret).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .apikey_files import record_from_secret
from .apikeys import LABEL, PREFIX, SECRET_TYPE, hash_key


@dataclass(frozen=True, slots=True)
class MintedKey:
    key: str
    """The API key itself: show it once, store it nowhere."""
    key_id: str
    manifest: dict[str, Any]
    """The Secret to apply (holds the key's SHA-256, never the key)."""


def new_key() -> tuple[str, str]:
    """``(key, key_id)`` with 256 random bits from :mod:`secrets`."""
    key_id = secrets.token_hex(6)
    return f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}", key_id  # 32 bytes are always 43 characters


def mint(
    principal: str,
    *,
    namespace: str | None = None,
    kind: str = "user",
    groups: Sequence[str] = (),
    expires: datetime | None = None,
) -> MintedKey:
    key, key_id = new_key()
    data = {"id": key_id, "sha256": hash_key(key).hex(), "principal": principal, "kind": kind}
    if groups:
        data["groups"] = ",".join(groups)
    if expires is not None:
        if expires.tzinfo is None:
            raise ValueError("expires needs a time zone")
        data["expires"] = expires.isoformat().replace("+00:00", "Z")
    metadata: dict[str, Any] = {"name": f"modelgate-api-key-{key_id}", "labels": {LABEL: "true"}}
    if namespace:
        metadata["namespace"] = namespace
    manifest = {"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE, "metadata": metadata, "stringData": data}
    record_from_secret(manifest)  # refuses what the proxy would refuse (reserved names, bad kind), before printing
    return MintedKey(key, key_id, manifest)
