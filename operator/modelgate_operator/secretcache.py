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
from collections.abc import Awaitable, Callable, Iterable, Mapping

REFERENCEABLE_LABEL = "serving.modelgate.io/referenceable"
"""With ``--require-secret-label`` (clusters without admission policies), only Secrets labelled ``...=true`` may be
referenced by a ServingEndpoint: labelling a Secret is the opt-in of whoever may edit it (docs/security.md)."""


def referenceable(labels: Mapping[str, str] | None) -> bool:
    return (labels or {}).get(REFERENCEABLE_LABEL) == "true"


def digests(data: Mapping[str, str] | None) -> dict[str, str]:
    """Key -> SHA-256 (hex) of the base64 value as the API returns it."""
    return {key: hashlib.sha256(str(value).encode()).hexdigest() for key, value in (data or {}).items()}


class SecretCache:
    """(namespace, name) -> key digests, as of the last watch event."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], dict[str, str]] = {}
        self._labelled: set[tuple[str, str]] = set()

    def update(
        self, namespace: str, name: str, data: Mapping[str, str] | None, labels: Mapping[str, str] | None = None
    ) -> None:
        """A watch event: ``data`` of the Secret (and its labels), or None when it was deleted."""
        self._labelled.discard((namespace, name))
        if data is None:
            self._known.pop((namespace, name), None)
        else:
            self._known[(namespace, name)] = digests(data)
            if referenceable(labels):
                self._labelled.add((namespace, name))

    async def unlabelled(
        self, namespace: str, names: list[str], fetch_labels: Callable[[str, str], Awaitable[Mapping[str, str] | None]]
    ) -> set[str]:
        """The Secrets among ``names`` without the opt-in label (fetching the labels of those not cached)."""
        out = set()
        for name in names:
            known = self.referenceable(namespace, name)
            if known is None:
                known = referenceable(await fetch_labels(namespace, name))
            if not known:
                out.add(name)
        return out

    def referenceable(self, namespace: str, name: str) -> bool | None:
        """The Secret carries the opt-in label; None when the watch has not delivered it."""
        if (namespace, name) not in self._known:
            return None
        return (namespace, name) in self._labelled

    async def fetch(
        self, namespace: str, names: Iterable[str],
        fetch_data: Callable[[str, str], Awaitable[dict[str, str] | None]],
    ) -> dict[str, dict[str, str] | None]:
        """Name -> the digests of each of ``names`` (fetching those the watch has not delivered); None: no such
        Secret."""
        return {name: self.get(namespace, name) or await fetch_data(namespace, name) for name in names}

    def get(self, namespace: str, name: str) -> dict[str, str] | None:
        """The digests, or None when the watch has not delivered this Secret (fetch it instead)."""
        found = self._known.get((namespace, name))
        return dict(found) if found is not None else None

    def __len__(self) -> int:
        return len(self._known)
