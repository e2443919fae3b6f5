"""What the operator knows about Secrets' values: digests, never the values.

The reconciler needs a referenced Secret only to check that the key exists and to fold its value into the pod
template checksum, so a SHA-256 of each value is enough. The Secret watch (which the operator runs anyway, to
reconcile on rotation) keeps :class:`SecretCache` current, which saves a GET per reconcile; a Secret the watch
has not delivered yet is fetched (and reduced to digests the same way), so a cache miss is never wrong.
Holding digests instead of values keeps credentials out of the operator's memory and its size small even when
the operator watches every Secret of a cluster.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def digests(data: Mapping[str, str] | None) -> dict[str, str]:
    """Key -> SHA-256 (hex) of the base64 value as the API returns it."""
    return {key: hashlib.sha256(str(value).encode()).hexdigest() for key, value in (data or {}).items()}


class SecretCache:
    """(namespace, name) -> key digests, as of the last watch event."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], dict[str, str]] = {}

    def update(self, namespace: str, name: str, data: Mapping[str, str] | None) -> None:
        """A watch event: ``data`` of the Secret, or None when it was deleted."""
        if data is None:
            self._known.pop((namespace, name), None)
        else:
            self._known[(namespace, name)] = digests(data)

    def get(self, namespace: str, name: str) -> dict[str, str] | None:
        """The digests, or None when the watch has not delivered this Secret (fetch it instead)."""
        found = self._known.get((namespace, name))
        return dict(found) if found is not None else None

    def __len__(self) -> int:
        return len(self._known)
