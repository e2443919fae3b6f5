"""Certificates and kubeconfigs for the local dev control plane (CA, serving, client and SA keys)."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CONTEXT = "modelgate-dev"

_Key = ec.EllipticCurvePrivateKey


def _pem_key(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _issue(
    cn: str,
    key: _Key,
    *,
    issuer: tuple[x509.Certificate, _Key] | None = None,
    orgs: Sequence[str] = (),
    sans: Sequence[x509.GeneralName] = (),
    usage: Sequence[x509.ObjectIdentifier] = (),
) -> x509.Certificate:
    """Self-signed CA when ``issuer`` is None, else a leaf certificate signed by ``issuer``."""
    name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs] + [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )
    now = datetime.datetime.now(datetime.UTC)
    is_ca = issuer is None
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if issuer is None else issuer[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=3650 if is_ca else 365))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=not is_ca,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usage)), critical=False)
    return builder.sign(key if issuer is None else issuer[1], hashes.SHA256())


class Pki:
    """CA + serving cert, client CA + admin cert, ServiceAccount signing keypair, all PEM files in
    ``directory``; existing files are reused so a persistent cluster keeps its identity."""

    def __init__(self, directory: Path, extra_ips: Sequence[str] = ()) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca = self._ca("ca", "modelgate-dev-ca")
        self.client_ca = self._ca("client-ca", "modelgate-dev-client-ca")
        if not self.path("apiserver.crt").exists():
            sans: list[x509.GeneralName] = [
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in extra_ips),
                x509.DNSName("localhost"),
                *(x509.DNSName(n) for n in ("kubernetes", "kubernetes.default", "kubernetes.default.svc")),
            ]
            key = ec.generate_private_key(ec.SECP256R1())
            cert = _issue("kube-apiserver", key, issuer=self.ca, sans=sans, usage=[ExtendedKeyUsageOID.SERVER_AUTH])
            self._write("apiserver", cert, key)
        if not self.path("sa.key").exists():
            sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pub = sa.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            self.path("sa.pub").write_bytes(pub)
            self._write_private(self.path("sa.key"), _pem_key(sa))

    def path(self, name: str) -> Path:
        return self.dir / name

    def client_cert(self, user: str, groups: Sequence[str] = ()) -> tuple[bytes, bytes]:
        """(cert PEM, key PEM) for ``user`` in ``groups`` (O=), signed by the client CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(user, key, issuer=self.client_ca, orgs=groups, usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)

    def _ca(self, stem: str, cn: str) -> tuple[x509.Certificate, _Key]:
        crt, key_path = self.path(f"{stem}.crt"), self.path(f"{stem}.key")
        if crt.exists() and key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            return x509.load_pem_x509_certificate(crt.read_bytes()), key
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(cn, key)
        self._write(stem, cert, key)
        return cert, key

    def _write(self, stem: str, cert: x509.Certificate, key: _Key) -> None:
        self._write_private(self.path(f"{stem}.key"), _pem_key(key))
        self.path(f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def _write_private(path: Path, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_kubeconfig(path: Path, server: str, ca_pem: bytes, user: str, cert_pem: bytes, key_pem: bytes) -> Path:
    """A self-contained kubeconfig (certs embedded), mode 0600."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)},
            }
        ],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Pki._write_private(tmp, yaml.safe_dump(config, sort_keys=False).encode())
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------------------------- processes
