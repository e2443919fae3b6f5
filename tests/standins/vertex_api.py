"""Stand-ins for Google's OAuth 2.0 token endpoint and the Vertex AI prediction API.

Token endpoint, from https://developers.google.com/identity/protocols/oauth2/service-account#httprest:
``POST token_uri`` with ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>``; the JWT
(RS256, ``kid`` = the key's ``private_key_id``) carries ``iss`` = the service account's email, ``scope``,
``aud``, ``iat`` and ``exp`` (at most one hour later). The signature is verified here with the service account's
public key (``cryptography``); the answer is ``{"access_token", "expires_in", "token_type": "Bearer"}`` and
errors are ``{"error": "invalid_grant", "error_description": ...}`` with HTTP 400.

Vertex AI, from https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent,
.../streamGenerateContent, .../predict (text embeddings,
https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api) and Claude's
``rawPredict`` / ``streamRawPredict`` (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude).
Every call needs ``Authorization: Bearer <a token this stand-in issued and that has not expired>``; otherwise
401 ``UNAUTHENTICATED`` in Google's error body ``{"error": {"code", "message", "status"}}``.

The "models" are deterministic: Gemini echoes the last user text or calls the first declared function when the
last turn is not a function response; Claude does the same in Anthropic's format. ``[quota]`` in the last user
text answers 429 ``RESOURCE_EXHAUSTED`` with a ``RetryInfo`` detail.

Gemini 3 thought signatures (https://docs.cloud.google.com/vertex-ai/generative-ai/docs/thought-signatures):
for a ``gemini-3*`` model every ``functionCall`` answered carries a ``thoughtSignature``, and a request is
refused with a 400 when the first ``functionCall`` of a model turn of the current turn (after the last user
text) comes back without one; the documented ``skip_thought_signature_validator`` placeholder is accepted.
``candidateCount`` answers that many candidates, each with its ``index`` (streamed too).

Claude: a last assistant message is a prefill (the answer continues it), as the Messages API allows; extended
thinking as in :mod:`tests.standins.anthropic_api` (a signed thinking block first, and required back before tool use).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .anthropic_api import THOUGHT, check_thinking, signature, thinking_enabled
from .bedrock_api import vector

JSON = dict[str, Any]

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_GEMINI_KEYS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings",
                "labels", "cachedContent"}
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           429: "RESOURCE_EXHAUSTED"}


class GoogleError(Exception):
    def __init__(self, code: int, message: str, details: list[JSON] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or []

    def response(self) -> Response:
        error: JSON = {"code": self.code, "message": self.message, "status": _STATUS.get(self.code, "UNKNOWN")}
        if self.details:
            error["details"] = self.details
        return JSONResponse({"error": error}, self.code)


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


@dataclass
class VertexStandIn:
    """``accounts`` maps service-account emails to (private_key_id, public key)."""

    accounts: dict[str, tuple[str, rsa.RSAPublicKey]]
    project: str = "my-project"
    token_lifetime: int = 3599
    issued: dict[str, float] = field(default_factory=dict)
    token_requests: int = 0
    calls: list[JSON] = field(default_factory=list)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/token", self.token, methods=["POST"]),
            Route("/v1/{rest:path}", self.predict, methods=["POST"]),
        ])

    # --- OAuth ---------------------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != JWT_GRANT:
            return JSONResponse({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}, 400)
        try:
            claims = self._verify(str(form.get("assertion", "")), str(request.url))
        except ValueError as exc:
            return JSONResponse({"error": "invalid_grant", "error_description": str(exc)}, 400)
        if CLAIMS_SCOPE not in str(claims.get("scope", "")).split():
            return JSONResponse({"error": "invalid_scope", "error_description": "Invalid OAuth scope."}, 400)
        token = "ya29.standin-" + secrets.token_urlsafe(24)
        self.issued[token] = time.time() + self.token_lifetime
        return JSONResponse({"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"})

    def _verify(self, assertion: str, token_url: str) -> JSON:
        try:
            header_b64, claims_b64, signature_b64 = assertion.split(".")
            header, claims = orjson.loads(_b64url(header_b64)), orjson.loads(_b64url(claims_b64))
            signature = _b64url(signature_b64)
        except (ValueError, orjson.JSONDecodeError):
            raise ValueError("Invalid JWT: malformed assertion") from None
        account = self.accounts.get(str(claims.get("iss")))
        if header.get("alg") != "RS256" or account is None or header.get("kid") != account[0]:
            raise ValueError("Invalid JWT Signature.")
        try:
            account[1].verify(signature, f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise ValueError("Invalid JWT Signature.") from None
        if claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, token_url):
            raise ValueError("Invalid JWT: Failed audience check.")
        now = time.time()
        iat, exp = int(claims.get("iat", 0)), int(claims.get("exp", 0))
        if not (iat - 300 <= now <= exp) or exp - iat > 3600:
            raise ValueError("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
        return dict(claims)

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        expiry = self.issued.get(token)
        if expiry is None or expiry < time.time():
            raise GoogleError(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                              "login cookie or other valid authentication credential.")

    # --- Vertex --------------------------------------------------------------------------------------

    async def predict(self, request: Request) -> Response:
        try:
            self._authenticate(request)
            raw = request.scope["raw_path"].decode("ascii")
            match = re.fullmatch(r"/v1/projects/([^/]+)/locations/([^/]+)/publishers/([^/]+)/models/([^/:]+):(\w+)", raw)
            if match is None:
                raise GoogleError(404, "The requested URL was not found on this server.")
            project, _, publisher, model, method = match.groups()
            if project != self.project:
                raise GoogleError(403, f"Permission denied on resource project {project}.")
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                raise GoogleError(400, "Invalid JSON payload received.") from None
            self.calls.append({"publisher": publisher, "model": unquote(model), "method": method, "body": body,
                               "query": request.url.query, "headers": dict(request.headers)})
            return await self._dispatch(publisher, method, body, request.url.query, unquote(model))
        except GoogleError as exc:
            return exc.response()

    async def _dispatch(self, publisher: str, method: str, body: JSON, query: str, model: str = "") -> Response:
        if publisher == "google" and method in ("generateContent", "streamGenerateContent"):
            reply = _gemini(body, model)
            if method == "generateContent":
                return JSONResponse(reply.answer())
            if query != "alt=sse":
                return JSONResponse([reply.answer()])
            return StreamingResponse(reply.sse(), media_type="text/event-stream")
        if publisher == "google" and method == "predict":
            return JSONResponse(_embeddings(body))
        if publisher == "anthropic" and method in ("rawPredict", "streamRawPredict"):
            claude = _claude(body, stream=method == "streamRawPredict")
            if method == "rawPredict":
                return JSONResponse(claude.message())
            return StreamingResponse(claude.sse(), media_type="text/event-stream")
        raise GoogleError(404, f"Method {method} is not found for publisher {publisher}.")


CLAIMS_SCOPE = CLOUD_PLATFORM


def _example_args(schema: Any) -> JSON:
    values = {"string": "Paris", "integer": 3, "number": 1.5, "boolean": True}
    props = (schema or {}).get("properties") or {}
    return {n: values.get(str(props.get(n, {}).get("type", "string")).lower(), "x") for n in (schema or {}).get("required") or []}


SKIP_SIGNATURE = "skip_thought_signature_validator"


def thought_signature(call: JSON) -> str:
    """The stand-in's (opaque) thought signature of a function call it made."""
    digest = hashlib.sha256(b"standin-gemini:" + orjson.dumps(call, option=orjson.OPT_SORT_KEYS)).digest()
    return base64.b64encode(digest).decode()


def _check_signatures(contents: list[JSON]) -> None:
    """Gemini 3's validation: in the current turn (after the last user text), the first ``functionCall`` of each
    model turn must carry its signature (or the documented placeholder); a wrong one is refused too."""
    start = max((i for i, c in enumerate(contents) if c["role"] == "user" and any("text" in p for p in c["parts"])), default=0)
    for i, content in enumerate(contents):
        calls = [p for p in content["parts"] if "functionCall" in p]
        for n, part in enumerate(calls):
            given = part.get("thoughtSignature")
            if given is None:
                if n == 0 and i > start:
                    raise GoogleError(400, f"Unable to submit request because function call `{part['functionCall'].get('name')}` "
                                      f"in the {i + 1}. content block is missing a `thought_signature`. Learn more: "
                                      "https://docs.cloud.google.com/vertex-ai/generative-ai/docs/thought-signatures")
            elif given not in (SKIP_SIGNATURE, thought_signature(part["functionCall"])):
                raise GoogleError(400, "Thought signature is not valid.")


@dataclass
class GeminiReply:
    text: str = ""
    call: JSON | None = None
    finish: str = "STOP"
    prompt_tokens: int = 0
    output_tokens: int = 0
    signed: bool = False
    """Gemini 3: the function call carries a thought signature."""
    candidates: int = 1

    def _text(self, index: int) -> str:
        return self.text if index == 0 else f"[{index}] {self.text}"

    def _call_part(self) -> JSON:
        assert self.call is not None
        part: JSON = {"functionCall": self.call}
        if self.signed:
            part["thoughtSignature"] = thought_signature(self.call)
        return part

    def answer(self) -> JSON:
        candidates = []
        for index in range(self.candidates):
            parts: list[JSON] = []
            if self.text:
                parts.append({"text": self._text(index)})
            if self.call:
                parts.append(self._call_part())
            candidates.append({"content": {"role": "model", "parts": parts}, "finishReason": self.finish, "index": index})
        return {"candidates": candidates, "usageMetadata": self._usage(), "modelVersion": "gemini-2.0-flash-001"}

    def _usage(self) -> JSON:
        return {"promptTokenCount": self.prompt_tokens, "candidatesTokenCount": self.output_tokens,
                "totalTokenCount": self.prompt_tokens + self.output_tokens}

    async def sse(self) -> AsyncIterator[bytes]:
        """One event per text piece of each candidate (with its ``index`` when there are several), interleaved."""
        for index in range(self.candidates):
            pieces = re.findall(r"\S+\s*", self._text(index)) if self.text else []
            for i, piece in enumerate(pieces):
                candidate: JSON = {"content": {"role": "model", "parts": [{"text": piece}]}}
                if self.candidates > 1:
                    candidate["index"] = index
                event: JSON = {"candidates": [candidate],
                               "usageMetadata": {"promptTokenCount": self.prompt_tokens, "totalTokenCount": self.prompt_tokens}}
                if i == len(pieces) - 1 and not self.call:
                    candidate["finishReason"] = self.finish
                    event["usageMetadata"] = self._usage()
                yield b"data: " + orjson.dumps(event) + b"\r\n\r\n"
                await asyncio.sleep(0)
        if self.call:
            event = {"candidates": [{"content": {"role": "model", "parts": [self._call_part()]},
                                     "finishReason": "STOP"}], "usageMetadata": self._usage()}
            yield b"data: " + orjson.dumps(event) + b"\r\n\r\n"


def _gemini(body: JSON, model: str = "") -> GeminiReply:
    unknown = sorted(set(body) - _GEMINI_KEYS)
    if unknown:
        raise GoogleError(400, f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.')
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise GoogleError(400, "Unable to submit request because it has an empty contents field.")
    calls_pending = 0
    for content in contents:
        if content.get("role") not in ("user", "model") or not content.get("parts"):
            raise GoogleError(400, "Please use a valid role: user, model.")
        responses = sum(1 for p in content["parts"] if "functionResponse" in p)
        if responses and responses != calls_pending:
            raise GoogleError(400, "Please ensure that the number of function response parts is equal to the "
                              "number of function call parts of the function call turn.")
        calls_pending = sum(1 for p in content["parts"] if "functionCall" in p)
    if model.startswith("gemini-3"):
        _check_signatures(contents)
    last = contents[-1]["parts"]
    prompt = " ".join(p.get("text", "") for p in last if "text" in p)
    if "[quota]" in prompt:
        raise GoogleError(429, "Resource exhausted. Please try again later.",
                          [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}])
    config = body.get("generationConfig") or {}
    temperature = config.get("temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        raise GoogleError(400, "Unable to submit request because it has a temperature value outside the range [0, 2].")
    reply = GeminiReply(prompt_tokens=sum(len(p.get("text", "").split()) for c in contents for p in c["parts"]),
                        signed=model.startswith("gemini-3"), candidates=int(config.get("candidateCount") or 1))
    declarations = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
    mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode", "AUTO")
    results = [p["functionResponse"] for p in last if "functionResponse" in p]
    if declarations and not results and mode != "NONE":
        allowed = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("allowedFunctionNames")
        chosen = next(d for d in declarations if not allowed or d["name"] in allowed)
        reply.call = {"name": chosen["name"], "args": _example_args(chosen.get("parameters"))}
        reply.output_tokens = 5
        return reply
    text = ("Tool said: " + " ".join(orjson.dumps(r["response"]).decode() for r in results)) if results else "Echo: " + prompt
    words = re.findall(r"\S+\s*", text)
    limit = config.get("maxOutputTokens")
    if limit is not None and len(words) > limit:
        words, reply.finish = words[:limit], "MAX_TOKENS"
    reply.text = "".join(words).rstrip() if reply.finish != "STOP" else text
    reply.output_tokens = len(words)
    return reply


def _embeddings(body: JSON) -> JSON:
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances or not all(isinstance(i.get("content"), str) for i in instances):
        raise GoogleError(400, "Invalid instances: each instance needs content.")
    size = int((body.get("parameters") or {}).get("outputDimensionality") or 768)
    return {"predictions": [{"embeddings": {"values": vector(i["content"], size),
                                            "statistics": {"token_count": len(i["content"].split()), "truncated": False}}}
                            for i in instances],
            "metadata": {"billableCharacterCount": sum(len(i["content"]) for i in instances)}}


@dataclass
class ClaudeReply:
    text: str = ""
    tool: JSON | None = None
    thinking: str = ""
    stop: str = "end_turn"
    input_tokens: int = 0
    output_tokens: int = 0
    id: str = field(default_factory=lambda: "msg_vrtx_" + uuid.uuid4().hex[:20])

    def message(self) -> JSON:
        content: list[JSON] = []
        if self.thinking:
            content.append({"type": "thinking", "thinking": self.thinking, "signature": signature(self.thinking)})
        if self.text:
            content.append({"type": "text", "text": self.text})
        if self.tool:
            content.append({"type": "tool_use", **self.tool})
        return {"id": self.id, "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
                "content": content, "stop_reason": self.stop, "stop_sequence": None,
                "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}}

    async def sse(self) -> AsyncIterator[bytes]:
        def event(name: str, data: JSON) -> bytes:
            return f"event: {name}\ndata: ".encode() + orjson.dumps({"type": name, **data}) + b"\n\n"

        start = {**self.message(), "content": [], "stop_reason": None,
                 "usage": {"input_tokens": self.input_tokens, "output_tokens": 1}}
        yield event("message_start", {"message": start})
        index = 0
        if self.thinking:
            yield event("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": ""}})
            for piece in re.findall(r"\S+\s*", self.thinking):
                yield event("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta", "thinking": piece}})
            yield event("content_block_delta", {"index": 0, "delta": {"type": "signature_delta", "signature": signature(self.thinking)}})
            yield event("content_block_stop", {"index": 0})
            index = 1
        if self.text:
            yield event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
            yield event("ping", {})
            for piece in re.findall(r"\S+\s*", self.text):
                yield event("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": piece}})
            yield event("content_block_stop", {"index": index})
            index += 1
        if self.tool:
            yield event("content_block_start", {"index": index, "content_block": {"type": "tool_use", **self.tool, "input": {}}})
            raw = orjson.dumps(self.tool["input"]).decode()
            for i in range(0, len(raw), 5):
                yield event("content_block_delta", {"index": index, "delta": {"type": "input_json_delta", "partial_json": raw[i : i + 5]}})
            yield event("content_block_stop", {"index": index})
        yield event("message_delta", {"delta": {"stop_reason": self.stop, "stop_sequence": None},
                                      "usage": {"output_tokens": self.output_tokens}})
        yield event("message_stop", {})


def _anthropic_error(status: int, kind: str, message: str) -> GoogleError:
    return GoogleError(status, f"{kind}: {message}")


def _claude(body: JSON, *, stream: bool) -> ClaudeReply:
    if body.get("anthropic_version") != "vertex-2023-10-16":
        raise _anthropic_error(400, "invalid_request_error", "anthropic_version: must be vertex-2023-10-16")
    if "model" in body:
        raise _anthropic_error(400, "invalid_request_error", "model: Extra inputs are not permitted")
    if not isinstance(body.get("max_tokens"), int):
        raise _anthropic_error(400, "invalid_request_error", "max_tokens: Field required")
    if bool(body.get("stream")) != stream:
        raise _anthropic_error(400, "invalid_request_error", "stream must be true exactly for streamRawPredict")
    messages = body.get("messages") or []
    users = [m for m in messages if m.get("role") == "user"]
    if not users:
        raise _anthropic_error(400, "invalid_request_error", "messages: at least one user message is required")
    problem = check_thinking(body)
    if problem:
        raise _anthropic_error(400, "invalid_request_error", problem)
    last = users[-1]["content"]  # a last assistant message is a prefill that the answer continues
    blocks = [{"type": "text", "text": last}] if isinstance(last, str) else last
    prompt = " ".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    results = [b for b in blocks if b.get("type") == "tool_result"]
    reply = ClaudeReply(input_tokens=sum(len(str(m.get("content")).split()) for m in messages),
                        thinking=THOUGHT if thinking_enabled(body) else "")
    tools = body.get("tools") or []
    if tools and not results:
        tool = tools[0]
        reply.tool = {"id": "toolu_vrtx_" + uuid.uuid4().hex[:16], "name": tool["name"],
                      "input": _example_args(tool.get("input_schema"))}
        reply.stop, reply.output_tokens = "tool_use", 7
        return reply
    if results:
        reply.text = "Tool said: " + " ".join(str(r.get("content")) for r in results)
    else:
        reply.text = "Echo: " + prompt
    reply.output_tokens = len(reply.text.split())
    return reply
