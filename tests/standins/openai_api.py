"""Stand-in for the OpenAI API (chat completions, completions, embeddings, streaming, tools, errors).

Written from OpenAI's API reference: https://platform.openai.com/docs/api-reference/chat/create,
https://platform.openai.com/docs/api-reference/chat-streaming (``chat.completion.chunk``; with
``stream_options.include_usage`` a last chunk with ``choices: []`` and ``usage`` comes before ``data: [DONE]``),
https://platform.openai.com/docs/api-reference/completions, https://platform.openai.com/docs/api-reference/embeddings
(``encoding_format: base64`` = packed little-endian float32), and the error body
``{"error": {"message", "type", "param", "code"}}`` (https://platform.openai.com/docs/guides/error-codes):
a wrong key is 401 ``invalid_api_key``, a missing required parameter 400 ``missing_required_parameter``, a
value of the wrong type 400 ``invalid_type`` ("Invalid type for 'tools[0]': expected an object, but got an
integer instead."), a role outside the enum 400 ``invalid_value``, ``n`` below 1 400 ``integer_below_min_value``;
``param`` names the offending field by its path.
Auth: ``Authorization: Bearer <key>``; ``OpenAI-Organization`` is checked when the stand-in is given one.
"""

from __future__ import annotations

from typing import Any

from .asgi import ASGIStandIn, bearer_token, read_request
from .fake_llm import (
    Receive,
    Scope,
    Send,
    Stats,
    chat_answer,
    chat_chunks,
    completion_answer,
    completion_chunks,
    embedding_answer,
    last_user_text,
    send_json,
    send_sse,
    sse_event,
)

REQUIRED = {"/v1/chat/completions": "messages", "/v1/completions": "prompt", "/v1/embeddings": "input"}


def required_field(path: str) -> str:
    if path.endswith("/chat/completions"):
        return "messages"
    return "prompt" if path.endswith("/completions") else "input"


def openai_error(message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
               dict: "an object", type(None): "null"}


def _wrong_type(param: str, expected: str, value: Any) -> dict[str, Any]:
    got = _TYPE_NAMES.get(type(value), "another type")
    return openai_error(f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
                        param=param, code="invalid_type")


def invalid_body(body: dict[str, Any]) -> dict[str, Any] | None:
    """The 400 body OpenAI answers for the shape errors a gateway may pass on (roles, content parts, tools, n)."""
    n = body.get("n")
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool):
            return _wrong_type("n", "an integer", n)
        if n < 1:
            return openai_error(f"Invalid 'n': integer below minimum value. Expected a value >= 1, but got {n} "
                                "instead.", param="n", code="integer_below_min_value")
    for i, message in enumerate(body.get("messages") or []):
        if not isinstance(message, dict):
            return _wrong_type(f"messages[{i}]", "an object", message)
        if message.get("role") not in ROLES:
            supported = ", ".join(f"'{r}'" for r in ROLES[:-1]) + f", and '{ROLES[-1]}'"
            return openai_error(f"Invalid value: '{message.get('role')}'. Supported values are: {supported}.",
                                param=f"messages[{i}].role", code="invalid_value")
        content = message.get("content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                    return _wrong_type(f"messages[{i}].content[{j}]", "an object", part)
        elif content is not None and not isinstance(content, str):
            return _wrong_type(f"messages[{i}].content", "one of a string or array of objects", content)
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return _wrong_type("tools", "an array", tools)
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                return _wrong_type(f"tools[{i}]", "an object", tool)
            function = tool.get("function")
            if tool.get("type") == "function" and not (isinstance(function, dict) and isinstance(function.get("name"), str)):
                return openai_error(f"Missing required parameter: 'tools[{i}].function.name'.",
                                    param=f"tools[{i}].function.name", code="missing_required_parameter")
    return None


def masked(key: str) -> str:
    return key[:3] + "*" * max(0, len(key) - 7) + key[-4:]


class OpenAIStandIn(ASGIStandIn):
    """``app`` is the ASGI app; ``api_key`` may be changed by a test (key rotation)."""

    def __init__(self, api_key: str = "sk-test-key", organization: str | None = None) -> None:
        self.api_key = api_key
        self.organization = organization
        self.stats = Stats()

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers, body = await read_request(scope, receive, self.stats)
        path = scope["path"]
        if scope["method"] != "POST" or path not in REQUIRED:
            await send_json(send, 404, openai_error(f"Invalid URL ({scope['method']} {path})"))
            return
        token = bearer_token(headers)
        if token is None:
            await send_json(send, 401, openai_error(
                "You didn't provide an API key. You need to provide your API key in an Authorization header using "
                "Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."))
            return
        if token != self.api_key:
            await send_json(send, 401, openai_error(
                f"Incorrect API key provided: {masked(token)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.", code="invalid_api_key"))
            return
        if self.organization is not None and headers.get("openai-organization") != self.organization:
            await send_json(send, 401, openai_error(
                "No such organization.", code="invalid_organization"))
            return
        await self.handle(path, body, headers, receive, send, self.stats)

    async def handle(self, path: str, body: Any, headers: dict[str, str], receive: Receive, send: Send,
                     stats: Stats, model: str | None = None, azure: bool = False) -> None:
        if not isinstance(body, dict):
            await send_json(send, 400, openai_error(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
                "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid "
                "JSON.)"))
            return
        if model is None:
            if not isinstance(body.get("model"), str):
                await send_json(send, 400, openai_error("you must provide a model parameter"))
                return
            model = body["model"]
        required = required_field(path)
        if required not in body:
            await send_json(send, 400, openai_error(
                f"Missing required parameter: '{required}'.", param=required, code="missing_required_parameter"))
            return
        if required == "messages" and (not isinstance(body["messages"], list) or not body["messages"]):
            await send_json(send, 400, openai_error(
                "Invalid type for 'messages': expected an array of objects.", param="messages", code="invalid_type"))
            return
        invalid = invalid_body(body)
        if invalid is not None:
            await send_json(send, 400, invalid)
            return
        text = last_user_text(body) if required != "input" else ""
        if "__fail_500__" in text:
            await send_json(send, 500, openai_error(
                "The server had an error processing your request. Sorry about that!", "server_error"))
            return
        if "__rate_limit__" in text:
            await send_json(send, 429, openai_error(
                f"Rate limit reached for {model} on requests per min (RPM): Limit 3, Used 3, Requested 1.",
                "requests", code="rate_limit_exceeded"), headers={"retry-after": "7"})
            return
        if "__slow__" in text:
            import asyncio

            await asyncio.sleep(0.3)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            if required == "messages":
                chunks = chat_chunks(body, model, usage_chunk=include_usage)
            elif required == "prompt":
                chunks = completion_chunks(body, model, usage_chunk=include_usage)
            else:
                await send_json(send, 400, openai_error("Embeddings cannot be streamed.", param="stream"))
                return
            if azure:
                chunks.insert(0, {"choices": [], "created": 0, "id": "", "model": "", "object": "",
                                  "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]})
            events = [sse_event(c) for c in chunks]
            if "__error_event__" in text:
                events.insert(2, sse_event(openai_error("The model is overloaded.", "server_error")))
            await send_sse(send, receive, stats, events, endless="__endless__" in text, cut="__cut__" in text)
            return
        if required == "messages":
            answer = chat_answer(body, model)
        elif required == "prompt":
            answer = completion_answer(body, model)
        else:
            answer = embedding_answer(body, model)
        await send_json(send, 200, answer, headers={"x-request-id": "req_standin"})
