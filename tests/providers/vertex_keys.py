"""Service-account keys made at test time (no private key is ever committed)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

EMAIL = "modelgate@my-project.iam.gserviceaccount.com"


@dataclass(frozen=True)
class ServiceAccountKey:
    key_id: str
    private: rsa.RSAPrivateKey

    @property
    def public(self) -> rsa.RSAPublicKey:
        return self.private.public_key()

    def key_file(self, token_uri: str, *, email: str = EMAIL) -> str:
        """The JSON key file as Google Cloud hands it out."""
        pem = self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return json.dumps({
            "type": "service_account",
            "project_id": "my-project",
            "private_key_id": self.key_id,
            "private_key": pem,
            "client_email": email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
        })

    def pem(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()


def new_key(key_id: str = "0123456789abcdef") -> ServiceAccountKey:
    return ServiceAccountKey(key_id, rsa.generate_private_key(public_exponent=65537, key_size=2048))
