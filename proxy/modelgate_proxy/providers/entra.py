"""Microsoft Entra ID client-credentials tokens for Azure OpenAI, cached and refreshed single-flight.

Reference: Microsoft identity platform, "OAuth 2.0 client credentials flow"
(https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow): ``POST
{authority}/{tenant}/oauth2/v2.0/token`` with ``client_id``, ``client_secret``, ``scope``,
``grant_type=client_credentials``; the answer is ``{"token_type": "Bearer", "expires_in": 3599,
"access_token": "..."}``. Azure OpenAI's scope is ``https://cognitiveservices.azure.com/.default``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson

from ..errors import ProviderConfigError, UpstreamError
from .base import HttpClient

SCOPE = "https://cognitiveservices.azure.com/.default"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
TOKEN_TIMEOUT = 30.0


class EntraTokenSource:
    """One per served entity. A token is reused until shortly before it expires (5 minutes, or a tenth
    of its lifetime if that is shorter); concurrent callers that find it stale wait for one refresh."""

    def __init__(
        self,
        *,
        authority: str | None,
        tenant_id: str,
        client_id: str,
        client_secret: Callable[[], str],
        http: HttpClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = f"{(authority or DEFAULT_AUTHORITY).rstrip('/')}/{tenant_id}/oauth2/v2.0/token"
        self._client_id = client_id
        self._client_secret = client_secret
        self._http = http
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock: asyncio.Lock | None = None
        self.fetches = 0
        """How many token requests were made (for tests and debugging)."""

    async def token(self) -> str:
        token = self._token
        if token is not None and self._clock() < self._refresh_at:
            return token
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            token = self._token
            if token is not None and self._clock() < self._refresh_at:
                return token
            return await self._fetch()

    async def _fetch(self) -> str:
        form = {
            "client_id": self._client_id,
            "client_secret": self._client_secret(),
            "scope": SCOPE,
            "grant_type": "client_credentials",
        }
        started = self._clock()
        self.fetches += 1
        status, body = await self._http.post_form(self.url, form, timeout=TOKEN_TIMEOUT)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if status != 200 or not isinstance(data, dict):
            raise _token_error(status, data)
        token, expires_in = data.get("access_token"), data.get("expires_in")
        try:
            lifetime = float(expires_in)  # type: ignore[arg-type]  # an int, or a string in older answers
        except (TypeError, ValueError):
            lifetime = -1.0
        if not isinstance(token, str) or not token or lifetime <= 0:
            raise UpstreamError("Microsoft Entra ID returned a token response without a usable token", status=502)
        margin = min(300.0, lifetime / 10)
        self._token, self._refresh_at = token, started + lifetime - margin
        return token


def _token_error(status: int, data: object) -> Exception:
    code = description = None
    if isinstance(data, dict):
        code, description = data.get("error"), data.get("error_description")
    detail = f"{code}" if isinstance(code, str) else f"HTTP {status}"
    if isinstance(description, str) and description:
        detail += f": {description.splitlines()[0][:300]}"
    if status in (400, 401, 403):
        # The endpoint's Entra configuration (tenant, client id or secret) is wrong.
        return ProviderConfigError(f"Microsoft Entra ID refused the client credentials ({detail})")
    return UpstreamError(f"Microsoft Entra ID token request failed ({detail})", status=502)
