"""Stand-in for a Databricks workspace's model serving endpoints.

Written from the Databricks REST reference "Query a serving endpoint"
(https://docs.databricks.com/api/workspace/servingendpoints/query): ``POST /serving-endpoints/{name}/invocations``
with ``Authorization: Bearer <token>``; chat endpoints take ``messages`` and answer in the OpenAI chat format
(``"stream": true`` gives ``data: <chunk>`` events ending with ``data: [DONE]``; Databricks chunks carry
``usage``); errors are ``{"error_code": "...", "message": "..."}`` (unknown endpoint 404
``RESOURCE_DOES_NOT_EXIST``; a bad token 403 ``PERMISSION_DENIED`` "Invalid access token."; a bad body 400
``BAD_REQUEST``).
"""

from __future__ import annotations

import re

from .asgi import ASGIStandIn, bearer_token, read_request
from .fake_llm import (
    Receive,
    Scope,
    Send,
    Stats,
    chat_answer,
    chat_chunks,
    embedding_answer,
    send_json,
    send_sse,
    sse_event,
)

_PATH = re.compile(r"^/serving-endpoints/([^/]+)/invocations$")


class DatabricksServingStandIn(ASGIStandIn):
    def __init__(self, endpoints: dict[str, str], token: str = "dapi-test-token") -> None:
        """``endpoints`` maps endpoint name -> task (``llm/v1/chat`` or ``llm/v1/embeddings``)."""
        self.endpoints = endpoints
        self.token = token
        self.stats = Stats()

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers, body = await read_request(scope, receive, self.stats)
        token = bearer_token(headers)
        if token is None:
            await send_json(send, 401, {"error_code": "UNAUTHENTICATED",
                                        "message": "Credential was not sent or was of an unsupported type for this API."})
            return
        if token != self.token:
            await send_json(send, 403, {"error_code": "PERMISSION_DENIED", "message": "Invalid access token."})
            return
        match = _PATH.match(scope["path"])
        if scope["method"] != "POST" or match is None or match.group(1) not in self.endpoints:
            name = match.group(1) if match else scope["path"]
            await send_json(send, 404, {"error_code": "RESOURCE_DOES_NOT_EXIST",
                                        "message": f"Endpoint with name '{name}' does not exist."})
            return
        task = self.endpoints[match.group(1)]
        if not isinstance(body, dict):
            await send_json(send, 400, {"error_code": "BAD_REQUEST", "message": "Malformed JSON request body."})
            return
        field = "messages" if task == "llm/v1/chat" else "input"
        if field not in body:
            await send_json(send, 400, {"error_code": "BAD_REQUEST",
                                        "message": f"Missing required field '{field}' in the request body."})
            return
        model = f"{match.group(1)}-model"
        if body.get("stream"):
            chunks = chat_chunks(body, model, usage_chunk=False, usage_every_chunk=True)
            await send_sse(send, receive, self.stats, [sse_event(c) for c in chunks])
            return
        answer = chat_answer(body, model) if task == "llm/v1/chat" else embedding_answer(body, model)
        await send_json(send, 200, answer)
