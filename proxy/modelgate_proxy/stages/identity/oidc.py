"""OIDC JWTs from one configured issuer (the corporate-SSO path), verified with PyJWT.

A token is this authenticator's when its (unverified) ``iss`` is the configured issuer; anything else is left to
the next authenticator. It is then accepted only if:

- its header ``alg`` is one of ``algorithms``, which may name asymmetric algorithms only (RS*, PS*, ES*, EdDSA):
  ``alg: none`` and HMAC (``HS256`` signed with the issuer's public key as the secret) never verify;
- its ``kid`` names a key in the issuer's JWKS (:mod:`.jwks`; an unknown ``kid`` refetches the set, rate-limited),
  and, when the key declares an ``alg``, the header's ``alg`` is that one;
- the signature verifies, ``iss`` and ``aud`` match, ``exp`` is in the future and ``nbf``/``iat`` not in it, with
  ``leeway`` seconds of clock skew (at most :data:`MAX_LEEWAY`).

The principal's name is the ``username_claim`` (default ``sub``) and its groups the ``groups_claim`` (a list or a
string), each with an optional prefix as kube-apiserver's ``--oidc-username-prefix``; a name or group in the
``system:`` namespace Kubernetes reserves is refused. Verified tokens are cached by SHA-256 until their ``exp``
(at most the cache's ``ttl``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from ...exchange import Principal
from .apikeys import RESERVED_PREFIX
from .bearer import Credential
from .check_cache import CacheBounds, TtlCache
from .headers import MAX_GROUPS, MAX_NAME
from .jwks import Jwks

log = logging.getLogger("modelgate.identity")

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MAX_LEEWAY = 300.0


@dataclass(frozen=True, slots=True)
class OidcSettings:
    issuer: str
    audience: str
    username_claim: str = "sub"
    groups_claim: str | None = "groups"
    username_prefix: str = ""
    groups_prefix: str = ""
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    leeway: float = 30.0
    """Seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat``."""
    ca_file: Path | None = None
    """CA bundle for the issuer's TLS certificate (default: the system's)."""

    def __post_init__(self) -> None:
        if not self.audience:
            raise ValueError("OIDC needs the audience (client id) tokens must be issued for")
        bad = [a for a in self.algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if bad or not self.algorithms:
            raise ValueError(f"OIDC algorithms must be asymmetric ones ({', '.join(sorted(ASYMMETRIC_ALGORITHMS))})")
        if not 0 <= self.leeway <= MAX_LEEWAY:
            raise ValueError(f"the OIDC clock-skew leeway must be between 0 and {MAX_LEEWAY:.0f} seconds")


class OidcAuthenticator:
    name = "oidc"

    def __init__(self, settings: OidcSettings, *, jwks: Jwks | None = None, cache: CacheBounds | None = None) -> None:
        self.settings = settings
        self.jwks = jwks or Jwks(settings.issuer, ca_file=settings.ca_file)
        self.cache: TtlCache[bytes, Principal | None] = TtlCache(cache or CacheBounds())

    async def close(self) -> None:
        await self.jwks.close()

    async def authenticate(self, credential: Credential) -> Principal | None:
        if not credential.looks_like_jwt:
            return None
        hit, cached = self.cache.get(credential.digest)  # before any parsing: the cached path is a dict lookup
        if hit:
            return cached
        try:
            header = jwt.get_unverified_header(credential.secret)
            unverified = jwt.decode(credential.secret, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        if unverified.get("iss") != self.settings.issuer:
            self.cache.put(credential.digest, None, positive=False)  # remembered briefly, as a refusal
            return None  # not this issuer's token: the next authenticator's

        async def verify() -> tuple[Principal | None, bool, float | None]:
            claims = await self._verify(credential.secret, header)
            principal = self._principal(claims) if claims is not None else None
            if principal is None or claims is None:
                return None, False, None
            return principal, True, float(claims["exp"]) - time.time()

        return await self.cache.get_or_load(credential.digest, verify)

    async def _verify(self, token: str, header: dict[str, Any]) -> dict[str, Any] | None:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.settings.algorithms:
            log.info("OIDC: refused a token signed with %r (allowed: %s)", str(alg)[:16], ", ".join(self.settings.algorithms))
            return None
        kid = header.get("kid")
        key = await self.jwks.key(kid if isinstance(kid, str) else None)
        if key is None:
            log.info("OIDC: refused a token whose key id is not in the issuer's key set")
            return None
        if not key.fits(alg):
            log.info("OIDC: refused a token whose alg %s does not fit its key (%s)", alg, key.kty)
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.jwk.key,
                algorithms=[alg],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway,
                options={"require": ["exp", "iss", "aud"], "verify_signature": True},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as e:
            log.info("OIDC: refused a token (%s)", type(e).__name__)
            return None
        return claims

    def _principal(self, claims: dict[str, Any]) -> Principal | None:
        s = self.settings
        raw_name = claims.get(s.username_claim)
        if not isinstance(raw_name, str) or not raw_name:
            return None
        name = s.username_prefix + raw_name
        if len(name) > MAX_NAME or not name.isprintable() or name.startswith(RESERVED_PREFIX):
            return None
        groups: dict[str, None] = {}
        raw_groups = claims.get(s.groups_claim) if s.groups_claim else None
        for g in [raw_groups] if isinstance(raw_groups, str) else raw_groups if isinstance(raw_groups, list) else []:
            if isinstance(g, str) and g:
                group = s.groups_prefix + g
                if len(group) <= MAX_NAME and group.isprintable() and not group.startswith(RESERVED_PREFIX):
                    groups[group] = None
            if len(groups) >= MAX_GROUPS:
                break
        return Principal("user", name, tuple(groups))
