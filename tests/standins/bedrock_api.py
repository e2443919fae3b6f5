"""A stand-in for the Amazon Bedrock runtime: Converse, ConverseStream and InvokeModel (embeddings).

Written from AWS's API reference:
- https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html (request, response, errors)
- https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html and
  https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html (events)
- https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html with the bodies of
  https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html and
  https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html
- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-troubleshooting.html (signature errors).

Authentication is checked as AWS does it: the SigV4 signature is recomputed with botocore from the request as
received (method, raw path, query, the signed headers, the body) with the secret key shared with the test, and
a missing, unknown or wrong signature is refused with a 403 and Bedrock's error body. Errors are
``{"message": ...}`` with the exception name in ``x-amzn-ErrorType``.

The "model" is deterministic: it echoes the last user text, calls the first tool when tools are offered and
the last user turn is not a tool result, and obeys ``maxTokens`` (one word = one token) and ``stopSequences``.
Trigger words in the last user text: ``[throttle]`` (429 ThrottlingException), ``[stream-error]`` (an exception
frame in the middle of a stream), ``[stream-error-burst]`` (the same, the frames up to the exception sent in one
write), ``[garbage]`` (a 200 answer that is not JSON).

Reasoning, as Claude does it through Converse (``additionalModelRequestFields.thinking``
``{type: enabled, budget_tokens}``; https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-extended-thinking.html,
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ReasoningContentBlock.html): the answer opens
with a ``reasoningContent`` block (``reasoningText`` with a signature; streamed as ``reasoningContent`` deltas of
text, then the signature), and the assistant turn answered by the last tool results must open with its
``reasoningContent`` block, signature unmodified, or the model's own error comes back as a ValidationException.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from . import aws_eventstream as es

JSON = dict[str, Any]

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<headers>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)
_REQUEST_KEYS = {
    "messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig", "additionalModelRequestFields",
    "additionalModelResponseFieldPaths", "promptVariables", "requestMetadata", "performanceConfig", "serviceTier",
}
_BLOCK_KEYS = {"text", "image", "document", "video", "toolUse", "toolResult", "guardContent", "cachePoint",
               "reasoningContent"}
_INFERENCE_KEYS = {"maxTokens", "temperature", "topP", "stopSequences"}
_EMBED_INPUT_TYPES = {"search_document", "search_query", "classification", "clustering"}
REASONING = "The user wants the weather. I should call the tool."
_THINKING_REQUIRED = (
    "The model returned the following errors: messages.{i}.content.0.type: Expected `thinking` or "
    "`redacted_thinking`, but found `{found}`. When `thinking` is enabled, a final `assistant` message must start "
    "with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you "
    "include thinking blocks from previous turns. To avoid this requirement, disable `thinking`."
)
_BLOCK_TYPES = {"text": "text", "toolUse": "tool_use", "toolResult": "tool_result", "image": "image"}


def reasoning_signature(text: str) -> str:
    """The stand-in's (opaque) signature of a reasoning text."""
    return base64.b64encode(hashlib.sha256(b"standin-bedrock:" + text.encode()).digest()).decode()


def _thinking(data: JSON) -> bool:
    thinking = (data.get("additionalModelRequestFields") or {}).get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") == "enabled"


class BedrockError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> Response:
    headers = {
        "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/",
        "x-amzn-RequestId": str(uuid.uuid4()),
    }
    return Response(orjson.dumps({"message": message}), status, headers=headers, media_type="application/json")


@dataclass
class Key:
    secret: str
    session_token: str | None = None


@dataclass
class BedrockStandIn:
    """``keys`` maps access key IDs to their secret (and session token, for temporary credentials)."""

    keys: dict[str, Key]
    region: str = "us-east-1"
    calls: list[JSON] = field(default_factory=list)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/model/{rest:path}", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        try:
            self._authenticate(request, body)
            raw_path = request.scope["raw_path"].decode("ascii")
            match = re.fullmatch(r"/model/([^/]+)/(converse|converse-stream|invoke)", raw_path)
            if match is None:
                raise BedrockError(404, "UnknownOperationException", "Unknown operation")
            model_id, operation = unquote(match.group(1)), match.group(2)
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise BedrockError(400, "ValidationException", "Malformed input request, please reformat your input and try again.") from None
            if not isinstance(data, dict):
                raise BedrockError(400, "ValidationException", "Malformed input request: expected an object")
            self.calls.append({"model": model_id, "operation": operation, "body": data,
                               "headers": dict(request.headers), "raw_path": raw_path})
            if operation == "invoke":
                return _invoke(model_id, data)
            reply = _converse(data)
            if "[throttle]" in reply.prompt:
                raise BedrockError(429, "ThrottlingException", "Too many requests, please wait before trying again.")
            if "[garbage]" in reply.prompt:
                return Response(b"<html>oops</html>", 200, media_type="application/json")
            if operation == "converse":
                return Response(orjson.dumps(reply.answer()), media_type="application/json",
                                headers={"x-amzn-RequestId": str(uuid.uuid4())})
            return StreamingResponse(reply.frames(), media_type="application/vnd.amazon.eventstream",
                                     headers={"x-amzn-RequestId": str(uuid.uuid4())})
        except BedrockError as exc:
            return error_response(exc.status, exc.code, exc.message)

    def _authenticate(self, request: Request, body: bytes) -> None:
        header = request.headers.get("authorization")
        if not header:
            raise BedrockError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        parsed = _AUTH.match(header)
        if parsed is None:
            raise BedrockError(403, "IncompleteSignatureException", "Authorization header requires 'Credential', "
                               "'Signature' and 'SignedHeaders' parameters.")
        key = self.keys.get(parsed["key"])
        if key is None:
            raise BedrockError(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        if key.session_token is not None and request.headers.get("x-amz-security-token") != key.session_token:
            raise BedrockError(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        if parsed["service"] != "bedrock" or parsed["region"] != self.region:
            raise BedrockError(403, "InvalidSignatureException",
                               "Credential should be scoped to a valid region and to the service 'bedrock'. ")
        amz_date = request.headers.get("x-amz-date", "")
        signed = parsed["headers"].split(";")
        if "host" not in signed or "x-amz-date" not in signed or not amz_date.startswith(parsed["date"]):
            raise BedrockError(403, "InvalidSignatureException", "The request signature does not cover host and x-amz-date.")
        when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if abs((datetime.now(UTC) - when).total_seconds()) > 15 * 60:
            raise BedrockError(403, "InvalidSignatureException", f"Signature expired: {amz_date} is now earlier or later than 15 min from now.")
        if parsed["signature"] != self._signature(request, body, key, parsed, signed, amz_date):
            raise BedrockError(403, "InvalidSignatureException",
                               "The request signature we calculated does not match the signature you provided. "
                               "Check your AWS Secret Access Key and signing method. Consult the service "
                               "documentation for details.")

    def _signature(self, request: Request, body: bytes, key: Key, parsed: re.Match[str], signed: list[str],
                   amz_date: str) -> str:
        raw_path = request.scope["raw_path"].decode("ascii")
        query = request.scope.get("query_string", b"").decode("ascii")
        url = f"http://{request.headers['host']}{raw_path}" + (f"?{query}" if query else "")
        headers = {name: request.headers.get(name, "") for name in signed}
        aws_request = AWSRequest(method=request.method, url=url, data=body, headers=headers)
        aws_request.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(parsed["key"], key.secret, key.session_token), parsed["service"], parsed["region"])
        if signer.payload(aws_request) != hashlib.sha256(body).hexdigest():
            raise BedrockError(400, "ValidationException", "The body hash does not match")
        canonical = signer.canonical_request(aws_request)
        expected: str = signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
        return expected if hmac.compare_digest(expected, parsed["signature"]) else ""


# --- the Converse "model" ------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


@dataclass
class Reply:
    prompt: str
    text: str = ""
    tool: JSON | None = None
    reasoning: str = ""
    stop_reason: str = "end_turn"
    input_tokens: int = 0
    output_tokens: int = 0

    def answer(self) -> JSON:
        content: list[JSON] = []
        if self.reasoning:
            text = {"text": self.reasoning, "signature": reasoning_signature(self.reasoning)}
            content.append({"reasoningContent": {"reasoningText": text}})
        if self.text:
            content.append({"text": self.text})
        if self.tool:
            content.append({"toolUse": self.tool})
        return {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": self.stop_reason,
            "usage": {"inputTokens": self.input_tokens, "outputTokens": self.output_tokens,
                      "totalTokens": self.input_tokens + self.output_tokens},
            "metrics": {"latencyMs": 12},
        }

    async def frames(self) -> AsyncIterator[bytes]:
        if "[stream-error-burst]" in self.prompt:
            yield b"".join([frame async for frame in self._frames(fail=True)])
            return
        async for frame in self._frames(fail="[stream-error]" in self.prompt):
            yield frame

    async def _frames(self, *, fail: bool) -> AsyncIterator[bytes]:
        yield es.event("messageStart", {"role": "assistant"})
        index = 0
        if self.reasoning:
            for piece in re.findall(r"\S+\s*", self.reasoning):
                yield es.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": piece}}})
            signed = {"reasoningContent": {"signature": reasoning_signature(self.reasoning)}}
            yield es.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": signed})
            yield es.event("contentBlockStop", {"contentBlockIndex": 0})
            index = 1
        if self.text:
            pieces = re.findall(r"\S+\s*|\s+", self.text)
            for n, piece in enumerate(pieces):
                yield es.event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}})
                if n == 0 and fail:
                    yield es.exception("modelStreamErrorException", "The model stream failed.")
                    return
                await asyncio.sleep(0)
            yield es.event("contentBlockStop", {"contentBlockIndex": index})
            index += 1
        if self.tool:
            start = {"toolUse": {"toolUseId": self.tool["toolUseId"], "name": self.tool["name"]}}
            yield es.event("contentBlockStart", {"contentBlockIndex": index, "start": start})
            arguments = orjson.dumps(self.tool["input"]).decode()
            for i in range(0, len(arguments), 7):
                delta = {"toolUse": {"input": arguments[i : i + 7]}}
                yield es.event("contentBlockDelta", {"contentBlockIndex": index, "delta": delta})
            yield es.event("contentBlockStop", {"contentBlockIndex": index})
        yield es.event("messageStop", {"stopReason": self.stop_reason})
        usage = {"inputTokens": self.input_tokens, "outputTokens": self.output_tokens,
                 "totalTokens": self.input_tokens + self.output_tokens}
        yield es.event("metadata", {"usage": usage, "metrics": {"latencyMs": 12}})


def _converse(data: JSON) -> Reply:
    extra = sorted(set(data) - _REQUEST_KEYS)
    if extra:
        raise BedrockError(400, "ValidationException", f"Malformed input request: extraneous key [{extra[0]}] is not permitted")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BedrockError(400, "ValidationException", "A conversation must start with a user message.")
    _check_messages(messages, data.get("toolConfig"))
    if _thinking(data):
        _check_reasoning(messages)
    inference = data.get("inferenceConfig") or {}
    if set(inference) - _INFERENCE_KEYS:
        raise BedrockError(400, "ValidationException", "Malformed input request: unknown inferenceConfig member")
    temperature = inference.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        raise BedrockError(400, "ValidationException", "temperature: must be between 0 and 1")
    last = messages[-1]["content"]
    prompt = " ".join(b["text"] for b in last if "text" in b)
    results = [b["toolResult"] for b in last if "toolResult" in b]
    system = " ".join(b.get("text", "") for b in data.get("system") or [])
    input_tokens = len(_words(system)) + sum(
        len(_words(b.get("text", ""))) + (3 if "toolResult" in b or "toolUse" in b else 0)
        for m in messages for b in m["content"]
    )
    reply = Reply(prompt=prompt, input_tokens=input_tokens, reasoning=REASONING if _thinking(data) else "")
    tools = (data.get("toolConfig") or {}).get("tools") or []
    if tools and not results:
        spec = _chosen_tool(tools, (data.get("toolConfig") or {}).get("toolChoice"))
        reply.tool = {"toolUseId": f"tooluse_{uuid.uuid4().hex[:22]}", "name": spec["name"],
                      "input": _example_input(spec["inputSchema"]["json"])}
        reply.stop_reason = "tool_use"
        reply.output_tokens = 9
        return reply
    if results:
        text = "Tool said: " + " ".join(c.get("text", orjson.dumps(c.get("json")).decode()) for r in results for c in r["content"])
    else:
        text = "Echo: " + prompt
    words = re.findall(r"\S+\s*", text)
    for stop in inference.get("stopSequences") or []:
        cut = text.find(stop)
        if cut >= 0:
            text, reply.stop_reason = text[:cut], "stop_sequence"
            words = re.findall(r"\S+\s*", text)
    max_tokens = inference.get("maxTokens")
    if max_tokens is not None and len(words) > max_tokens:
        words, reply.stop_reason = words[:max_tokens], "max_tokens"
    reply.text = "".join(words).rstrip() if reply.stop_reason != "end_turn" else text
    reply.output_tokens = len(words)
    return reply


def _check_messages(messages: list[Any], tool_config: Any) -> None:
    expected = "user"
    tool_ids: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != expected:
            raise BedrockError(400, "ValidationException",
                               "A conversation must alternate between user and assistant roles. "
                               f"Make sure the conversation alternates between user and assistant roles and try again. (messages.{i})")
        content = message.get("content")
        if not isinstance(content, list) or not content:
            raise BedrockError(400, "ValidationException", f"messages.{i}.content: must not be empty")
        for block in content:
            if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in _BLOCK_KEYS:
                raise BedrockError(400, "ValidationException", f"messages.{i}.content: each block must have exactly one member")
            if "toolUse" in block:
                tool_ids.add(block["toolUse"]["toolUseId"])
            if "toolResult" in block and block["toolResult"].get("toolUseId") not in tool_ids:
                raise BedrockError(400, "ValidationException", f"messages.{i}: toolResult does not match a toolUse")
            if ("toolUse" in block or "toolResult" in block) and not tool_config:
                raise BedrockError(400, "ValidationException", "The toolConfig field must be defined when using "
                                   "toolUse and toolResult content blocks.")
            if "image" in block:
                image = block["image"]
                if image.get("format") not in ("png", "jpeg", "gif", "webp") or not isinstance(image.get("source", {}).get("bytes"), str):
                    raise BedrockError(400, "ValidationException", f"messages.{i}: invalid image block")
        expected = "assistant" if expected == "user" else "user"
    if messages[-1]["role"] != "user":
        raise BedrockError(400, "ValidationException", "A conversation must end with a user message.")


def _check_reasoning(messages: list[JSON]) -> None:
    """With thinking on: reasoning blocks come back with their signature, and the assistant turn that the last
    tool results answer opens with one."""
    for i, message in enumerate(messages):
        for block in message["content"]:
            text = (block.get("reasoningContent") or {}).get("reasoningText")
            if isinstance(text, dict) and text.get("signature") != reasoning_signature(str(text.get("text"))):
                raise BedrockError(400, "ValidationException", f"The model returned the following errors: messages.{i}: "
                                   "Invalid `signature` in `thinking` block")
    if len(messages) >= 2 and any("toolResult" in b for b in messages[-1]["content"]):
        first = messages[-2]["content"][0]
        if "reasoningContent" not in first:
            found = _BLOCK_TYPES.get(next(iter(first)), next(iter(first)))
            raise BedrockError(400, "ValidationException", _THINKING_REQUIRED.format(i=len(messages) - 2, found=found))


def _chosen_tool(tools: list[JSON], choice: Any) -> JSON:
    specs = [t["toolSpec"] for t in tools]
    if isinstance(choice, dict) and "tool" in choice:
        for spec in specs:
            if spec["name"] == choice["tool"]["name"]:
                return spec
        raise BedrockError(400, "ValidationException", "toolChoice names a tool that is not in tools")
    return specs[0]


def _example_input(schema: JSON) -> JSON:
    values = {"string": "Paris", "integer": 3, "number": 1.5, "boolean": True}
    props = schema.get("properties") or {}
    return {name: values.get(props.get(name, {}).get("type", "string"), "x") for name in schema.get("required") or []}


# --- InvokeModel embeddings ----------------------------------------------------------------------------


def vector(text: str, size: int) -> list[float]:
    """A deterministic unit vector for ``text``."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [((digest[i % 32] + i) % 97) / 97.0 - 0.5 for i in range(size)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]


def _invoke(model_id: str, data: JSON) -> Response:
    if model_id.startswith("amazon.titan-embed-text"):
        if set(data) - {"inputText", "dimensions", "normalize", "embeddingTypes"} or not isinstance(data.get("inputText"), str):
            raise BedrockError(400, "ValidationException", "Malformed input request: #: required key [inputText] not found")
        size = int(data.get("dimensions") or 1024)
        if size not in (256, 512, 1024):
            raise BedrockError(400, "ValidationException", "Malformed input request: dimensions must be 256, 512 or 1024")
        values = vector(data["inputText"], size)
        answer = {"embedding": values, "inputTextTokenCount": len(_words(data["inputText"])),
                  "embeddingsByType": {"float": values}}
        return Response(orjson.dumps(answer), media_type="application/json")
    if model_id.startswith("cohere.embed"):
        texts = data.get("texts")
        if set(data) - {"texts", "input_type", "truncate", "embedding_types", "images"} or not isinstance(texts, list):
            raise BedrockError(400, "ValidationException", "Malformed input request: #: required key [texts] not found")
        if data.get("input_type") not in _EMBED_INPUT_TYPES:
            raise BedrockError(400, "ValidationException", "Malformed input request: #/input_type: is not a valid enum value")
        if len(texts) > 96:
            raise BedrockError(400, "ValidationException", "Malformed input request: #/texts: expected maximum item count: 96")
        answer = {"id": str(uuid.uuid4()), "texts": texts, "embeddings": [vector(t, 1024) for t in texts],
                  "response_type": "embeddings_floats"}
        return Response(orjson.dumps(answer), media_type="application/json")
    raise BedrockError(400, "ValidationException", "The provided model identifier is invalid.")
