"""OpenAI chat ↔ Gemini ``generateContent`` / ``streamGenerateContent?alt=sse`` on Vertex AI.

Roles: ``system``/``developer`` → ``systemInstruction``; ``assistant`` → ``model``; tool results → a ``user``
turn of ``functionResponse`` parts. Tools → ``functionDeclarations``; tool calls ↔ ``functionCall`` parts.
Gemini has no "tool calls" finish reason: a candidate with a ``functionCall`` part finishes with
``tool_calls``. Reference:
https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent
and https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/GenerateContentResponse.
"""

from __future__ import annotations

import mimetypes
import uuid
from typing import Any

import orjson

from ..errors import BadRequest, BadUpstreamResponse, UpstreamError
from ..sse import SSEParser
from . import openai_objects as oai
from .base import StreamDecoder
from .messages import split_turns, text_of, user_content
from .params import NOT_FORWARDED, discard, drop_unsupported, pass_through, refuse_rest, sampling_config
from .tool_calls import call_arguments, tool_choice, tool_function

JSON = dict[str, Any]

PROVIDER = "google-cloud-vertex-ai"

FINISH_REASONS: dict[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
"""Gemini ``finishReason`` → OpenAI ``finish_reason``; others (``OTHER``, ``MALFORMED_FUNCTION_CALL`` …) → stop."""

_GENERATION = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "seed": "seed",
    "n": "candidateCount",
}
_PASS_THROUGH = ("safetySettings", "labels", "cachedContent")
_SCHEMA_DROP = ("$schema", "additionalProperties", "strict")
"""JSON-schema keywords Gemini's OpenAPI-subset ``Schema`` rejects; removed from tool parameters."""


def generate_content_request(payload: JSON) -> JSON:
    body = dict(payload)
    discard(body, NOT_FORWARDED)
    drop_unsupported(body, ("logit_bias", "logprobs", "top_logprobs"), PROVIDER)
    system, contents = _contents(body.pop("messages", None))
    out: JSON = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": t} for t in system]}
    generation = _generation_config(body)
    if generation:
        out["generationConfig"] = generation
    tools = body.pop("tools", None)
    choice = body.pop("tool_choice", None)
    if tools:
        out["tools"] = [{"functionDeclarations": [_declaration(t) for t in tools]}]
        config = _tool_config(choice)
        if config:
            out["toolConfig"] = config
    pass_through(body, out, _PASS_THROUGH)
    refuse_rest(body, PROVIDER)
    return out


def _generation_config(body: JSON) -> JSON:
    config: JSON = {}
    extra = body.pop("generationConfig", None)
    if isinstance(extra, dict):
        config.update(extra)
    config.update(sampling_config(body, max_tokens="maxOutputTokens", names=_GENERATION))
    fmt = body.pop("response_format", None)
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt["type"] == "json_schema" else None
        if isinstance(schema, dict):
            config["responseSchema"] = _schema(schema)
    elif fmt not in (None, {"type": "text"}):
        raise BadRequest("response_format must be text, json_object or json_schema", param="response_format")
    return config


def _contents(messages: Any) -> tuple[list[str], list[JSON]]:
    names: dict[str, str] = {}
    """tool_call_id → function name (functionResponse parts are matched by name)."""
    system, turns = split_turns(
        messages,
        user=_user_parts,
        assistant=lambda message: _model_parts(message, names),
        tool_result=lambda message: _function_response(message, names),
    )
    contents: list[JSON] = []
    for role, parts in turns:
        _append(contents, "model" if role == "assistant" else "user", parts)
    return system, contents


def _append(contents: list[JSON], role: str, parts: list[JSON]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _user_parts(content: Any) -> list[JSON]:
    return user_content(content, image=_image_part, provider=PROVIDER)


def _image_part(image: Any) -> JSON:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise BadRequest("image_url needs a url", param="messages")
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if encoding != "base64" or not mime:
            raise BadRequest("image data: URLs must be base64", param="messages")
        return {"inlineData": {"mimeType": mime, "data": data}}
    guessed = mimetypes.guess_type(url.split("?")[0])[0]
    if not guessed or not url.startswith(("gs://", "https://", "http://")):
        raise BadRequest("image URLs must be data: URLs or gs:// / https:// URLs of a known image type", param="messages")
    return {"fileData": {"mimeType": guessed, "fileUri": url}}


def _model_parts(message: JSON, names: dict[str, str]) -> list[JSON]:
    parts: list[JSON] = []
    text = text_of(message.get("content"), role="assistant")
    if text:
        parts.append({"text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BadRequest("each tool call needs a function name", param="messages")
        args = call_arguments(function)
        if isinstance(call.get("id"), str):
            names[call["id"]] = function["name"]
        parts.append({"functionCall": {"name": function["name"], "args": args}})
    return parts


def _function_response(message: JSON, names: dict[str, str]) -> JSON:
    name = names.get(str(message.get("tool_call_id")))
    if name is None:
        raise BadRequest("a tool message answers a tool_call_id that no assistant message made", param="messages")
    text = text_of(message.get("content"), role="tool")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = text
    response = value if isinstance(value, dict) else {"content": value}
    return {"functionResponse": {"name": name, "response": response}}


def _declaration(tool: Any) -> JSON:
    function = tool_function(tool)
    declaration: JSON = {"name": function["name"]}
    if function.get("description"):
        declaration["description"] = function["description"]
    if function.get("parameters"):
        declaration["parameters"] = _schema(function["parameters"])
    return declaration


def _schema(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _schema(v) for k, v in schema.items() if k not in _SCHEMA_DROP}
    if isinstance(schema, list):
        return [_schema(v) for v in schema]
    return schema


def _tool_config(choice: Any) -> JSON | None:
    mode, name = tool_choice(choice)
    if mode == "auto":
        return None
    if mode == "none":
        return {"functionCallingConfig": {"mode": "NONE"}}
    if mode == "required":
        return {"functionCallingConfig": {"mode": "ANY"}}
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}


# --- answers -------------------------------------------------------------------------------------------


def _call_id(call: JSON) -> str:
    return str(call.get("id") or f"call_{uuid.uuid4().hex[:24]}")


def _finish(reason: Any, has_calls: bool) -> str | None:
    if has_calls:
        return "tool_calls"
    if reason is None:
        return None
    return FINISH_REASONS.get(str(reason), "stop")


def usage_of(metadata: Any) -> JSON | None:
    if not isinstance(metadata, dict):
        return None
    completion = int(metadata.get("candidatesTokenCount") or 0) + int(metadata.get("thoughtsTokenCount") or 0)
    return oai.usage(int(metadata.get("promptTokenCount") or 0), completion)


def chat_from_gemini(answer: Any, model: str) -> JSON:
    if not isinstance(answer, dict):
        raise BadUpstreamResponse(f"{PROVIDER} returned an answer that is not an object")
    candidates = answer.get("candidates")
    chat = oai.chat_completion(id=f"chatcmpl-{uuid.uuid4().hex}", model=model, content=None, tool_calls=[],
                               finish_reason="content_filter", usage=usage_of(answer.get("usageMetadata")))
    if not candidates:
        if "promptFeedback" not in answer:
            raise BadUpstreamResponse(f"{PROVIDER} returned an answer without candidates")
        return chat  # the prompt was blocked
    try:
        chat["choices"] = [_choice(c, i) for i, c in enumerate(candidates)]
    except (KeyError, TypeError, AttributeError):
        raise BadUpstreamResponse(f"{PROVIDER} returned a candidate that could not be read") from None
    return chat


def _choice(candidate: JSON, position: int) -> JSON:
    texts: list[str] = []
    calls: list[JSON] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if part.get("thought"):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            calls.append(oai.tool_call(_call_id(call), call["name"], orjson.dumps(call.get("args") or {}).decode()))
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return {"index": int(candidate.get("index", position)), "message": message, "logprobs": None,
            "finish_reason": _finish(candidate.get("finishReason"), bool(calls)) or "stop"}


class GeminiStreamDecoder(StreamDecoder):
    """``streamGenerateContent?alt=sse`` events (each a whole ``GenerateContentResponse``) → OpenAI chunks.
    Text parts arrive as fragments; a ``functionCall`` part arrives whole and becomes one tool-call delta."""

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self._sse = SSEParser()
        self._model = model
        self._include_usage = include_usage
        self._id = f"chatcmpl-{uuid.uuid4().hex}"
        self._created = oai.now()
        self._started = False
        self._finished = False
        self._calls = 0
        self._usage: JSON | None = None

    def feed(self, data: bytes) -> list[JSON]:
        return self._translate(self._sse.feed(data))

    def close(self) -> list[JSON]:
        chunks = self._translate(self._sse.close())
        if not self._finished:
            raise BadUpstreamResponse(f"{PROVIDER} ended the stream without a finish reason")
        if self._include_usage and self._usage is not None:
            chunks.append(oai.usage_chunk(id=self._id, model=self._model, created=self._created, usage=self._usage))
        return chunks

    def _chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        return oai.chat_chunk(id=self._id, model=self._model, created=self._created, delta=delta, finish_reason=finish)

    def _translate(self, events: list[Any]) -> list[JSON]:
        chunks: list[JSON] = []
        for event in events:
            try:
                answer = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                raise BadUpstreamResponse(f"{PROVIDER} sent a stream event that is not JSON") from None
            if not isinstance(answer, dict):
                raise BadUpstreamResponse(f"{PROVIDER} sent a stream event that is not an object")
            chunks.extend(self._answer(answer))
        return chunks

    def _answer(self, answer: JSON) -> list[JSON]:
        error = answer.get("error")
        if isinstance(error, dict):
            status = int(error.get("code") or 502)
            raise UpstreamError(f"{PROVIDER} error: {error.get('message', '')}", status=status if status >= 400 else 502)
        if answer.get("usageMetadata"):
            self._usage = usage_of(answer["usageMetadata"])
        out: list[JSON] = []
        if not self._started:
            self._started = True
            out.append(self._chunk({"role": "assistant", "content": ""}))
        candidates = answer.get("candidates") or []
        if not candidates and answer.get("promptFeedback", {}).get("blockReason"):
            self._finished = True
            out.append(self._chunk({}, "content_filter"))
        for candidate in candidates[:1]:
            out.extend(self._candidate(candidate))
        return out

    def _candidate(self, candidate: JSON) -> list[JSON]:
        out: list[JSON] = []
        for part in (candidate.get("content") or {}).get("parts") or []:
            if part.get("thought"):
                continue
            if isinstance(part.get("text"), str) and part["text"]:
                out.append(self._chunk({"content": part["text"]}))
            elif isinstance(part.get("functionCall"), dict):
                call = part["functionCall"]
                arguments = orjson.dumps(call.get("args") or {}).decode()
                delta = {"index": self._calls, **oai.tool_call(_call_id(call), str(call.get("name", "")), arguments)}
                self._calls += 1
                out.append(self._chunk({"tool_calls": [delta]}))
        reason = candidate.get("finishReason")
        if reason is not None:
            self._finished = True
            out.append(self._chunk({}, _finish(reason, self._calls > 0)))
        return out
