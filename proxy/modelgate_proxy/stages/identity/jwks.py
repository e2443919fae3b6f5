"""An OIDC issuer's signing keys: discovery, the JWKS, and their cache with rotation.

``{issuer}/.well-known/openid-configuration`` names the ``jwks_uri`` (its ``issuer`` must equal the configured
one, OpenID Connect Discovery 1.0 section 4.3). The key set is kept ``max_age`` seconds; a token whose ``kid`` is
not in it triggers a refetch (the issuer rotated its keys), at most once per ``min_refetch`` seconds, so a stream
of tokens with made-up ``kid`` values cannot make the proxy hammer the issuer. Only asymmetric keys (RSA, EC, OKP)
are kept; a symmetric (``oct``) key in a JWKS is ignored.

A failure to reach the issuer is an :class:`IdentityUnavailable` (503) when no keys are known; with keys already
known they stay in use (up to ``stale_limit`` seconds past ``max_age``) and the failure is logged.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
import orjson

from ...errors import IdentityUnavailable
from .bounded_read import read_bounded

log = logging.getLogger("modelgate.identity")

MAX_DOCUMENT = 256 * 1024
"""Largest discovery document or JWKS read."""
MAX_KEYS = 100
ASYMMETRIC = frozenset({"RSA", "EC", "OKP"})


@dataclass(frozen=True, slots=True)
class SigningKey:
    jwk: jwt.PyJWK
    kty: str
    alg: str | None
    """The algorithm the JWK declares, if it declares one."""

    def fits(self, alg: str) -> bool:
        """Whether a token header's ``alg`` may be verified with this key (family and declared algorithm)."""
        family = "RSA" if alg[:2] in ("RS", "PS") else "EC" if alg[:2] == "ES" else "OKP" if alg == "EdDSA" else None
        return family == self.kty and (self.alg is None or self.alg == alg)


def check_url(url: str, what: str) -> str:
    """``https://`` always; ``http://`` only on loopback (a stand-in issuer in tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname:
        try:
            if parts.hostname == "localhost" or ipaddress.ip_address(parts.hostname).is_loopback:
                return url
        except ValueError:
            pass
    raise ValueError(f"the {what} must be an https:// URL (http:// only on loopback)")


class Jwks:
    def __init__(
        self,
        issuer: str,
        *,
        ca_file: Path | None = None,
        timeout: float = 5.0,
        max_age: float = 600.0,
        min_refetch: float = 30.0,
        stale_limit: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = check_url(issuer, "OIDC issuer URL")
        self.ca_file = ca_file
        self.timeout = timeout
        self.max_age, self.min_refetch, self.stale_limit = max_age, min_refetch, stale_limit
        self._clock = clock
        self._keys: dict[str | None, SigningKey] = {}
        self._fetched = -float("inf")
        self._attempted = -float("inf")
        self._jwks_uri: str | None = None
        self._error: str | None = None
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self.fetches = 0
        """JWKS fetches so far (for tests and metrics)."""

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def key(self, kid: str | None) -> SigningKey | None:
        """The signing key ``kid`` (``None``: the issuer's only key), refetching the set when needed."""
        now = self._clock()
        stale = now - self._fetched >= self.max_age
        if (stale or self._lookup(kid) is None) and now - self._attempted >= self.min_refetch:
            await self._refresh()
        if self._keys and self._clock() - self._fetched >= self.max_age + self.stale_limit:
            self._keys = {}
        if not self._keys and self._error is not None:
            raise IdentityUnavailable(self._error)
        return self._lookup(kid)

    def _lookup(self, kid: str | None) -> SigningKey | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        attempted = self._attempted
        async with self._lock:
            if self._attempted != attempted:  # another request refreshed while this one waited
                return
            self._attempted = self._clock()
            try:
                keys = await self._fetch()
            except IdentityUnavailable as e:
                self._error = e.message
                if self._keys:
                    log.warning("OIDC: could not refresh the keys of %s (%s); using the ones known", self.issuer, e)
                    return
                raise
            self._keys, self._fetched, self._error = keys, self._clock(), None
            self.fetches += 1

    async def _fetch(self) -> dict[str | None, SigningKey]:
        if self._jwks_uri is None:
            doc = await self._get_json(self.issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery document")
            if doc.get("issuer") != self.issuer:
                raise IdentityUnavailable("the OIDC discovery document names a different issuer than configured")
            uri = doc.get("jwks_uri")
            try:
                self._jwks_uri = check_url(str(uri), "OIDC jwks_uri") if isinstance(uri, str) else None
            except ValueError as e:
                raise IdentityUnavailable(str(e)) from None
            if self._jwks_uri is None:
                raise IdentityUnavailable("the OIDC discovery document has no jwks_uri")
        jwks = await self._get_json(self._jwks_uri, "key set (JWKS)")
        raw_keys = jwks.get("keys")
        if not isinstance(raw_keys, list):
            raise IdentityUnavailable("the OIDC issuer's JWKS has no keys array")
        keys: dict[str | None, SigningKey] = {}
        for raw in raw_keys[:MAX_KEYS]:
            if not isinstance(raw, dict) or raw.get("kty") not in ASYMMETRIC or raw.get("use", "sig") != "sig":
                continue
            try:
                kid, alg = raw.get("kid"), raw.get("alg")
                keys[kid if isinstance(kid, str) else None] = SigningKey(
                    jwt.PyJWK(raw), str(raw["kty"]), alg if isinstance(alg, str) else None
                )
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                log.warning("OIDC: a key of %s could not be read; ignored", self.issuer)
        return keys

    async def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            ctx: ssl.SSLContext | bool = True
            if self.ca_file is not None:
                try:  # reads the CA file: in a thread, not on the event loop
                    ctx = await asyncio.to_thread(ssl.create_default_context, cafile=str(self.ca_file))
                except OSError as e:
                    raise IdentityUnavailable(f"cannot read the OIDC issuer's CA bundle: {e.strerror}") from None
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=ctx, limit=8),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                trust_env=False,
            )
        return self._session

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with (await self._open()).get(url, allow_redirects=False, headers={"Accept": "application/json"}) as resp:
                raw = await read_bounded(resp, MAX_DOCUMENT)
                status = resp.status
        except TimeoutError:
            raise IdentityUnavailable(f"the OIDC issuer did not send its {what} in time") from None
        except (aiohttp.ClientError, OSError):
            raise IdentityUnavailable(f"the OIDC issuer could not be reached for its {what}") from None
        if status != 200:
            raise IdentityUnavailable(f"the OIDC issuer answered HTTP {status} for its {what}")
        if raw is None:
            raise IdentityUnavailable(f"the OIDC issuer's {what} is larger than {MAX_DOCUMENT} bytes")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise IdentityUnavailable(f"the OIDC issuer's {what} is not JSON") from None
        if not isinstance(data, dict):
            raise IdentityUnavailable(f"the OIDC issuer's {what} is not a JSON object")
        return data
