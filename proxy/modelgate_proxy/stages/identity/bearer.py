"""The caller's credential, read from ``Authorization: Bearer <credential>`` (what the official OpenAI client,
MLflow's deployments client and the Databricks SDK send), or ``Basic`` with the user ``token`` (the
Databricks docs' ``curl -u token:$DATABRICKS_TOKEN``).

A :class:`Credential` never shows its secret in ``repr``/``str``; caches key on :attr:`Credential.digest`
(SHA-256), never on the secret itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import Final

from ...errors import AuthenticationFailed, Unauthenticated

MAX_CREDENTIAL = 16 * 1024
"""Longest accepted credential (a Kubernetes projected token is ~1 KiB, a corporate JWT a few KiB)."""

_AUTHORIZATION: Final = b"authorization"
_TOKEN_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/="
)
"""RFC 6750 ``b64token`` characters."""


class Credential:
    """A bearer credential; ``secret`` is the raw value, ``digest`` its SHA-256 (the cache key)."""

    __slots__ = ("_digest", "secret")

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._digest: bytes | None = None

    @property
    def digest(self) -> bytes:
        if self._digest is None:
            self._digest = hashlib.sha256(self.secret.encode("ascii")).digest()
        return self._digest

    @property
    def looks_like_jwt(self) -> bool:
        return self.secret.count(".") == 2

    def __repr__(self) -> str:
        return "Credential(<redacted>)"

    __str__ = __repr__


def _malformed(why: str) -> AuthenticationFailed:
    return Unauthenticated(f"the Authorization header is malformed: {why}")


def parse_authorization(value: bytes) -> Credential:
    """The credential in one ``Authorization`` header value; a malformed value is a 401."""
    if len(value) > MAX_CREDENTIAL + 16:
        raise _malformed(f"longer than {MAX_CREDENTIAL} bytes")
    try:
        text = value.decode("ascii").strip()
    except UnicodeDecodeError:
        raise _malformed("not ASCII") from None
    scheme, _, rest = text.partition(" ")
    rest = rest.strip()
    if scheme.lower() == "bearer":
        secret = rest
    elif scheme.lower() == "basic":
        try:
            user, sep, secret = base64.b64decode(rest, validate=True).decode("ascii").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _malformed("Basic credentials are not base64 of user:password") from None
        if not sep or user != "token":
            raise _malformed("Basic credentials must be token:<credential>")
    else:
        raise _malformed("expected 'Bearer <credential>'")
    if not secret:
        raise _malformed("the credential is empty")
    if len(secret) > MAX_CREDENTIAL or not _TOKEN_CHARS.issuperset(secret):
        raise _malformed("the credential has characters a bearer token cannot have")
    return Credential(secret)


def read_credential(headers: Sequence[tuple[bytes, bytes]]) -> Credential | None:
    """The credential in ASGI ``headers``, ``None`` when there is no ``Authorization`` header; two are a 401."""
    found: bytes | None = None
    for key, value in headers:
        if key == _AUTHORIZATION:
            if found is not None:
                raise _malformed("more than one Authorization header")
            found = value
    return None if found is None else parse_authorization(found)
