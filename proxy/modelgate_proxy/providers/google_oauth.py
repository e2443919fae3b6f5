"""OAuth access tokens for Vertex AI from a service-account JSON key, obtained and cached by google-auth.

google-auth signs the JWT assertion (RS256 with the key's ``private_key``) and exchanges it at the key's
``token_uri`` for an access token with the ``cloud-platform`` scope. Its refresh is synchronous, so it runs in
a worker thread; one lock makes concurrent requests wait for a single refresh. A token is reused until
google-auth considers it near expiry (a few minutes before ``expires_in`` runs out). A rotated key file (the
Secret changed) builds new credentials on the next request.

Accepted ``privateKey`` values: the whole service-account key file as downloaded from Google Cloud
(``"type": "service_account"`` with ``client_email``, ``private_key``, ``private_key_id``, ``token_uri``). A
PEM private key alone is refused with a clear message: without ``client_email`` there is no account to sign in.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from ..errors import ProviderConfigError, UpstreamError, UpstreamUnavailable

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
TOKEN_TIMEOUT = 30.0
"""Seconds a token request may take."""
_REQUIRED = ("client_email", "private_key", "token_uri")


def parse_key(text: str) -> dict[str, Any]:
    """The service-account key as a dict; :class:`ProviderConfigError` naming what is wrong (never a value)."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        raise ProviderConfigError(
            "googleCloudVertexAiConfig.privateKey holds a PEM private key alone; Vertex AI needs the whole "
            "service-account JSON key file (it names the account in client_email and the token_uri)"
        )
    try:
        info = json.loads(stripped)
    except ValueError:
        raise ProviderConfigError("googleCloudVertexAiConfig.privateKey is not a service-account JSON key file") from None
    if not isinstance(info, dict):
        raise ProviderConfigError("googleCloudVertexAiConfig.privateKey is not a service-account JSON key file")
    if info.get("type", "service_account") != "service_account":
        raise ProviderConfigError(
            f"googleCloudVertexAiConfig.privateKey is a {str(info.get('type'))[:40]!r} credential; only "
            "service-account key files (type service_account) are supported"
        )
    missing = [name for name in _REQUIRED if not isinstance(info.get(name), str) or not info.get(name)]
    if missing:
        raise ProviderConfigError(
            "googleCloudVertexAiConfig.privateKey is missing " + ", ".join(missing) + " (use the whole JSON key file)"
        )
    return info


class _TimedRequest:
    """google-auth's requests transport with a bounded timeout."""

    def __init__(self) -> None:
        import google.auth.transport.requests

        self._inner = google.auth.transport.requests.Request()

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                 timeout: Any = None, **kwargs: Any) -> Any:
        return self._inner(url, method=method, body=body, headers=headers, timeout=TOKEN_TIMEOUT, **kwargs)


class ServiceAccountTokens:
    """Access tokens for one endpoint's key."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._fingerprint = ""
        self._credentials: Any = None
        self._transport: _TimedRequest | None = None

    async def token(self, key_text: str) -> str:
        fingerprint = hashlib.sha256(key_text.encode()).hexdigest()
        current = self._credentials
        if current is not None and fingerprint == self._fingerprint and current.valid:
            return str(current.token)
        async with self._lock:
            if fingerprint != self._fingerprint or self._credentials is None:
                self._credentials = _credentials(parse_key(key_text))
                self._fingerprint = fingerprint
            credentials = self._credentials
            if not credentials.valid:
                if self._transport is None:
                    self._transport = _TimedRequest()
                await asyncio.to_thread(_refresh, credentials, self._transport)
            return str(credentials.token)


def _credentials(info: dict[str, Any]) -> Any:
    from google.oauth2 import service_account

    try:
        return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=list(SCOPES)
        )
    except (ValueError, KeyError, TypeError):
        raise ProviderConfigError(
            "googleCloudVertexAiConfig.privateKey: the service account's private_key could not be loaded"
        ) from None


def _refresh(credentials: Any, transport: _TimedRequest) -> None:
    from google.auth import exceptions

    try:
        credentials.refresh(transport)
    except exceptions.TransportError as exc:
        raise UpstreamUnavailable(f"google-cloud-vertex-ai: the token endpoint could not be reached ({type(exc).__name__})") from None
    except exceptions.RefreshError as exc:
        raise UpstreamError(
            f"google-cloud-vertex-ai: the token endpoint refused the service account key: {_reason(exc)}",
            status=403,
        ) from None


def _reason(exc: Exception) -> str:
    """The OAuth error code and description google-auth reports, without the raw response."""
    args = exc.args
    text = str(args[0]) if args else type(exc).__name__
    return text[:300]
