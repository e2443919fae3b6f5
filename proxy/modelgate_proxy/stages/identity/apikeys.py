"""API keys, the analogue of a Databricks personal access token: format, stored record, and the check.

Format: ``mgk_<id>_<secret>``: the recognisable prefix ``mgk_`` (secret scanners and humans spot it), a public
12-hex-digit key id (names the key in logs and in its Secret's name, never secret) and 43 URL-safe base64
characters from :func:`secrets.token_urlsafe` (256 random bits).

Only the key's SHA-256 is stored. A fast unsalted hash is sufficient here and deliberately chosen: salts and slow
hashes (scrypt, argon2) defend low-entropy passwords against dictionary and rainbow-table attacks, and a 256-bit
random key has no dictionary; recovering it from its hash is a SHA-256 preimage. A slow hash would cost
milliseconds of CPU on every request for no gain. The check looks the record up by the public id and compares the
hashes with :func:`hmac.compare_digest` (constant time); the key itself is never stored, cached or logged.

A record is one Kubernetes Secret (see :mod:`.apikey_files` for the manifest), labelled
``serving.modelgate.io/api-key: "true"``; revoking a key is deleting its Secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from ...errors import IdentityUnavailable
from ...exchange import Principal, PrincipalKind
from .bearer import Credential
from .headers import MAX_GROUPS, MAX_NAME

PREFIX = "mgk_"
LABEL = "serving.modelgate.io/api-key"
SECRET_TYPE = "serving.modelgate.io/api-key"
RESERVED_PREFIX = "system:"
"""Names Kubernetes reserves for its own identities: an API key may not claim them (nor groups such as
``system:masters``)."""

_KEY = re.compile(r"mgk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_ID = re.compile(r"[0-9a-f]{12}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class InvalidApiKeyRecord(ValueError):
    """A Secret (or file) that does not describe an API key; the message names fields, never values."""


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: str
    sha256: bytes
    principal: Principal
    expires: float | None = None
    """Unix time after which the key is refused."""
    source: str = ""
    """Where the record came from (``<namespace>/<secret>`` or a file name), for logs."""


def key_id_of(key: str) -> str | None:
    """The public id of a well-formed key, ``None`` for anything else."""
    m = _KEY.fullmatch(key)
    return m.group(1) if m else None


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("ascii")).digest()


def record_from_fields(fields: Mapping[str, str], *, source: str) -> ApiKeyRecord:
    """An :class:`ApiKeyRecord` from a Secret's decoded data: ``id``, ``sha256``, ``principal``, optional ``kind``
    (``user`` | ``service_principal``), ``groups`` (comma- or newline-separated) and ``expires`` (RFC 3339)."""
    key_id = fields.get("id", "").strip()
    if not _ID.fullmatch(key_id):
        raise InvalidApiKeyRecord("id must be the key's 12 hex digits")
    digest = fields.get("sha256", "").strip().lower()
    if not _SHA256.fullmatch(digest):
        raise InvalidApiKeyRecord("sha256 must be 64 hex digits (the SHA-256 of the key)")
    name = fields.get("principal", "").strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidApiKeyRecord(f"principal must be a printable name of at most {MAX_NAME} characters")
    if name.startswith(RESERVED_PREFIX):
        raise InvalidApiKeyRecord(f"principal may not start with {RESERVED_PREFIX!r} (reserved for Kubernetes)")
    kind_text = fields.get("kind", "user").strip() or "user"
    if kind_text not in ("user", "service_principal"):
        raise InvalidApiKeyRecord("kind must be user or service_principal")
    kind: PrincipalKind = "user" if kind_text == "user" else "service_principal"
    groups = _groups(fields.get("groups", ""))
    expires = _expires(fields.get("expires", "").strip())
    return ApiKeyRecord(key_id, bytes.fromhex(digest), Principal(kind, name, groups), expires, source)


def _groups(raw: str) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for part in raw.replace("\n", ",").split(","):
        group = part.strip()
        if not group:
            continue
        if len(group) > MAX_NAME or not group.isprintable():
            raise InvalidApiKeyRecord(f"a group must be a printable name of at most {MAX_NAME} characters")
        if group.startswith(RESERVED_PREFIX):
            raise InvalidApiKeyRecord(f"groups may not start with {RESERVED_PREFIX!r} (reserved for Kubernetes)")
        out[group] = None
    if len(out) > MAX_GROUPS:
        raise InvalidApiKeyRecord(f"at most {MAX_GROUPS} groups")
    return tuple(out)


def _expires(raw: str) -> float | None:
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidApiKeyRecord("expires must be an RFC 3339 time, e.g. 2027-01-31T00:00:00Z") from None
    if when.tzinfo is None:
        raise InvalidApiKeyRecord("expires must carry a time zone (e.g. a trailing Z)")
    return when.timestamp()


class ApiKeyStore:
    """The current records by key id; :meth:`replace` swaps them all at once (a reload or a watch event).

    ``current_until`` (``time.monotonic()``) is set by a source that can fall behind (the Secret watch): past it,
    the records may miss a revocation, and keys are answered with a 503 rather than checked against them."""

    __slots__ = ("_records", "current_until")

    def __init__(self, records: Iterable[ApiKeyRecord] = ()) -> None:
        self._records: dict[str, ApiKeyRecord] = {}
        self.current_until = float("inf")
        self.replace(records)

    def replace(self, records: Iterable[ApiKeyRecord]) -> None:
        self._records = {r.key_id: r for r in records}

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key_id: str) -> ApiKeyRecord | None:
        return self._records.get(key_id)


class ApiKeyAuthenticator:
    """Vouches for ``mgk_`` keys whose SHA-256 matches a current record (and that have not expired)."""

    name = "apikey"

    def __init__(self, store: ApiKeyStore, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._now = clock

    async def authenticate(self, credential: Credential) -> Principal | None:
        return self.check(credential.secret)

    def check(self, key: str) -> Principal | None:
        key_id = key_id_of(key)
        if key_id is None:
            return None
        if time.monotonic() >= self.store.current_until:
            raise IdentityUnavailable("API keys cannot be checked now: the list of keys is not current")
        record = self.store.get(key_id)
        if record is None:
            return None
        if not hmac.compare_digest(hash_key(key), record.sha256):
            return None
        if record.expires is not None and self._now() >= record.expires:
            return None
        return record.principal
