"""Stand-in OIDC issuer: the discovery document and the JWKS, with keys it can rotate, and tokens it signs.

Written from OpenID Connect Discovery 1.0 (``/.well-known/openid-configuration`` with ``issuer`` and
``jwks_uri``) and RFC 7517 (a JWK Set ``{"keys": [...]}``). Keys are RSA (``RS256``) and EC P-256 (``ES256``)
made with ``cryptography``; tokens are signed with PyJWT, so a test can also sign with a key the issuer never
published (a forgery). Serve with ``serve_app(issuer.app)`` and set :attr:`url` to the URL it yields.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from .asgi import ASGIStandIn
from .fake_llm import Receive, Scope, Send, send_json

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class IssuerKey:
    kid: str
    alg: str
    private: PrivateKey

    def jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg.startswith("RS") else ECAlgorithm
        data: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**data, "kid": self.kid, "alg": self.alg, "use": "sig"}


def new_key(alg: str = "RS256") -> IssuerKey:
    private: PrivateKey
    if alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(alg)
    return IssuerKey(secrets.token_hex(4), alg, private)


class OidcIssuerStandIn(ASGIStandIn):
    def __init__(self) -> None:
        self.url = ""
        """The issuer URL (``http://127.0.0.1:<port>``); set it after ``serve_app`` started the app."""
        self.keys: list[IssuerKey] = [new_key()]
        self.jwks_requests = 0
        self.discovery_requests = 0
        self.extra_jwks: list[dict[str, Any]] = []
        """Raw JWKs published after the issuer's own (e.g. a symmetric ``oct`` key a proxy must never use)."""
        self.fail = False
        """Answer 500 to everything (an issuer outage)."""

    @property
    def current(self) -> IssuerKey:
        return self.keys[-1]

    def rotate(self, *, keep_old: bool = False, alg: str = "RS256") -> IssuerKey:
        key = new_key(alg)
        self.keys = [*self.keys, key] if keep_old else [key]
        return key

    def token(self, claims: dict[str, Any] | None = None, *, key: IssuerKey | None = None, ttl: float = 300,
              headers: dict[str, Any] | None = None, **overrides: Any) -> str:
        key = key or self.current
        now = int(time.time())
        payload = {"iss": self.url, "aud": "modelgate", "sub": "alice@example.com", "groups": ["data-scientists"],
                   "iat": now, "exp": now + int(ttl), **(claims or {}), **overrides}
        return jwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid, **(headers or {})})

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if self.fail:
            await send_json(send, 500, {"error": "server_error"})
        elif path == "/.well-known/openid-configuration":
            self.discovery_requests += 1
            await send_json(send, 200, {"issuer": self.url, "jwks_uri": f"{self.url}/jwks",
                                        "id_token_signing_alg_values_supported": ["RS256", "ES256"]})
        elif path == "/jwks":
            self.jwks_requests += 1
            await send_json(send, 200, {"keys": [k.jwk() for k in self.keys] + self.extra_jwks})
        else:
            await send_json(send, 404, {"error": "not_found"})
