"""Stand-in for the Microsoft Entra ID token endpoint (OAuth 2.0 client credentials).

Written from "Microsoft identity platform and the OAuth 2.0 client credentials flow"
(https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow):
``POST /{tenant}/oauth2/v2.0/token``, form-encoded ``client_id``, ``client_secret``, ``scope``,
``grant_type=client_credentials``; success ``{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
"access_token": "..."}``; errors ``{"error", "error_description", "error_codes", "timestamp", "trace_id",
"correlation_id"}`` (a wrong secret is 401 ``invalid_client`` AADSTS7000215, a wrong scope 400 ``invalid_scope``).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import parse_qs

from .asgi import ASGIStandIn, request_headers
from .fake_llm import Receive, Scope, Send, read_body, send_json


def _error(error: str, description: str, code: int) -> dict[str, Any]:
    return {"error": error, "error_description": description, "error_codes": [code],
            "timestamp": "2024-01-01 00:00:00Z", "trace_id": "0000", "correlation_id": "0000"}


class EntraStandIn(ASGIStandIn):
    def __init__(self, tenant: str, client_id: str, client_secret: str, *, expires_in: int = 3599,
                 delay: float = 0.0) -> None:
        self.tenant, self.client_id, self.client_secret = tenant, client_id, client_secret
        self.expires_in = expires_in
        self.delay = delay
        self.issued: list[str] = []
        """Access tokens issued, oldest first; an Azure stand-in accepts any of them."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await read_body(receive)
        if scope["method"] != "POST" or scope["path"] != f"/{self.tenant}/oauth2/v2.0/token":
            await send_json(send, 400, _error("invalid_tenant", f"AADSTS90002: Tenant not found. ({scope['path']})",
                                              90002))
            return
        headers = request_headers(scope)
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            await send_json(send, 400, _error("invalid_request", "AADSTS900144: The request body must contain the "
                                              "following parameter: 'grant_type'.", 900144))
            return
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            await send_json(send, 400, _error("unsupported_grant_type", "AADSTS70003: unsupported grant type", 70003))
            return
        if form.get("scope") != "https://cognitiveservices.azure.com/.default":
            await send_json(send, 400, _error("invalid_scope", "AADSTS70011: The provided request must include a "
                                              "'scope' input parameter.", 70011))
            return
        if form.get("client_id") != self.client_id:
            await send_json(send, 400, _error("unauthorized_client", "AADSTS700016: Application not found.", 700016))
            return
        if form.get("client_secret") != self.client_secret:
            await send_json(send, 401, _error("invalid_client", "AADSTS7000215: Invalid client secret provided. "
                                              "Ensure the secret being sent in the request is the client secret "
                                              "value, not the client secret ID.", 7000215))
            return
        if self.delay:
            await asyncio.sleep(self.delay)
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(24)
        self.issued.append(token)
        await send_json(send, 200, {"token_type": "Bearer", "expires_in": self.expires_in,
                                    "ext_expires_in": self.expires_in, "access_token": token})
