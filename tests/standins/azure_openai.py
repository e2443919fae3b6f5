"""Stand-in for Azure OpenAI (data plane).

Written from the Azure OpenAI REST reference (https://learn.microsoft.com/azure/ai-services/openai/reference,
spec ``AzureOpenAI/inference/stable/2024-10-21/inference.json``): ``POST
/openai/deployments/{deployment-id}/chat/completions|completions|embeddings?api-version=YYYY-MM-DD``; the
``api-version`` query parameter is required (without it the service answers 404 ``Resource not found``); auth is
``api-key: <key>`` or ``Authorization: Bearer <Entra token>``; a wrong key is 401 "Access denied due to invalid
subscription key or wrong API endpoint..."; an unknown deployment is 404 ``DeploymentNotFound``. Streams start
with a ``prompt_filter_results`` chunk (empty ``choices``, empty ``id``); answers carry the deployment's model.

The v1 API (https://learn.microsoft.com/azure/foundry/openai/api-version-lifecycle): ``POST
/openai/v1/chat/completions|completions|embeddings``, no dated ``api-version`` (the v1 preview takes
``api-version=preview``), the deployment named by the body's ``model``, the same auth.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qs

from .asgi import ASGIStandIn, bearer_token, read_request
from .fake_llm import Receive, Scope, Send, Stats, send_json
from .openai_api import OpenAIStandIn

_PATH = re.compile(r"^/openai/deployments/([^/]+)/(chat/completions|completions|embeddings)$")
_V1_PATH = re.compile(r"^/openai/v1/(chat/completions|completions|embeddings)$")
V1_API_VERSIONS = ("preview", "latest")


def azure_error(code: str, message: str) -> dict[str, object]:
    return {"error": {"code": code, "message": message}}


class AzureOpenAIStandIn(ASGIStandIn):
    def __init__(self, deployments: dict[str, str], *, api_key: str | None = "azure-test-key",
                 tokens: Callable[[], list[str]] | None = None) -> None:
        """``deployments`` maps deployment name -> model; ``tokens`` lists accepted Entra access tokens."""
        self.deployments = deployments
        self.api_key = api_key
        self.tokens = tokens or (lambda: [])
        self.stats = Stats()
        self._model = OpenAIStandIn()

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers, body = await read_request(scope, receive, self.stats)
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        match = _PATH.match(scope["path"])
        v1 = _V1_PATH.match(scope["path"])
        if scope["method"] != "POST" or ((match is None or "api-version" not in query) and v1 is None):
            await send_json(send, 404, azure_error("404", "Resource not found"))
            return
        if v1 is not None and query.get("api-version", "preview") not in V1_API_VERSIONS:
            await send_json(send, 400, azure_error("BadRequest", "API version not supported"))
            return
        token = bearer_token(headers)
        if "api-key" in headers:
            ok = self.api_key is not None and headers["api-key"] == self.api_key
        else:
            ok = token is not None and token in self.tokens()
        if not ok:
            await send_json(send, 401, azure_error(
                "401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
                "valid key for an active subscription and use a correct regional API endpoint for your resource."))
            return
        deployment = match.group(1) if match is not None else (body.get("model") if isinstance(body, dict) else None)
        if deployment not in self.deployments:
            await send_json(send, 404, azure_error(
                "DeploymentNotFound", "The API deployment for this resource does not exist. If you created the "
                "deployment within the last 5 minutes, please wait a moment and try again."))
            return
        await self._model.handle(scope["path"], body, headers, receive, send, self.stats,
                                 model=self.deployments[deployment], azure=True)
