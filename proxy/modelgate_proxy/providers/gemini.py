"""OpenAI chat ↔ Gemini ``generateContent`` / ``streamGenerateContent?alt=sse`` on Vertex AI.

Roles: ``system``/``developer`` → ``systemInstruction``; ``assistant`` → ``model``; tool results → a ``user``
turn of ``functionResponse`` parts. Tools → ``functionDeclarations``; tool calls ↔ ``functionCall`` parts.
Gemini has no "tool calls" finish reason: a candidate with a ``functionCall`` part finishes with
``tool_calls``. Reference:
https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent
and https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/GenerateContentResponse.

Thought signatures (https://docs.cloud.google.com/vertex-ai/generative-ai/docs/thought-signatures): Gemini 3
puts a ``thoughtSignature`` on the ``functionCall`` parts it answers (for parallel calls, on the first one) and
answers 400 when the first ``functionCall`` of a step in the current turn comes back without it. OpenAI's tool
call has no field for it, so the signature travels in the tool call's ``id``, which every caller echoes back
(``<id>__thought__<signature>``, :data:`SIGNATURE_SEPARATOR`), and is restored on that ``functionCall`` part.
A model turn whose function calls carry no signature at all (history from another model, or hand-written) gets
the documented placeholder :data:`SKIP_SIGNATURE` on its first ``functionCall``.

``n`` → ``candidateCount``; streamed, every candidate is sent under its own ``choices[].index`` with its own
finish reason (streaming takes the same parameters as ``generateContent``,
https://cloud.google.com/vertex-ai/generative-ai/docs/learn/streaming).
"""

from __future__ import annotations

import mimetypes
import uuid
from typing import Any

import orjson

from ..errors import BadRequest, BadUpstreamResponse, UpstreamError
from ..json_types import JSON
from ..sse import SSEParser
from . import openai_objects as oai
from .base import StreamDecoder, decode_each, event_object, with_chunks_before
from .messages import split_turns, text_of, user_content
from .params import NOT_FORWARDED, discard, drop_unsupported, pass_through, refuse_rest, sampling_config
from .tool_calls import call_arguments, tool_choice, tool_function

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
SIGNATURE_SEPARATOR = "__thought__"
"""Between a tool call's own id and the ``thoughtSignature`` of its ``functionCall`` part (base64, so it never
holds the separator)."""
SKIP_SIGNATURE = "skip_thought_signature_validator"
"""The ``thoughtSignature`` Vertex documents for function calls it did not produce itself (thought-signatures
page above): validation is skipped for that step."""
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
    for content in contents:
        calls = [p for p in content["parts"] if "functionCall" in p]
        if calls and not any("thoughtSignature" in p for p in calls):
            calls[0]["thoughtSignature"] = SKIP_SIGNATURE
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
        part: JSON = {"functionCall": {"name": function["name"], "args": args}}
        if isinstance(call.get("id"), str):
            names[call["id"]] = function["name"]
            _, separator, signature = call["id"].partition(SIGNATURE_SEPARATOR)
            if separator and signature:
                part["thoughtSignature"] = signature
        parts.append(part)
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


def _call_id(part: JSON) -> str:
    """The OpenAI tool call id of a ``functionCall`` part: its own id (or a new one), and its thought signature
    when it has one (see :data:`SIGNATURE_SEPARATOR`)."""
    call_id = str(part["functionCall"].get("id") or f"call_{uuid.uuid4().hex[:24]}")
    signature = part.get("thoughtSignature")
    return f"{call_id}{SIGNATURE_SEPARATOR}{signature}" if isinstance(signature, str) and signature else call_id


def _finish(reason: Any, has_calls: bool) -> str | None:
    if has_calls:
        return "tool_calls"
    if reason is None:
        return None
    return FINISH_REASONS.get(str(reason), "stop")


def usage_of(metadata: Any) -> JSON | None:
    """``usageMetadata`` → OpenAI usage: ``promptTokenCount`` already counts the cached content, which is also
    given as ``prompt_tokens_details.cached_tokens`` (``cachedContentTokenCount``, GenerateContentResponse
    reference above); thinking tokens count as completion tokens."""
    if not isinstance(metadata, dict):
        return None
    completion = int(metadata.get("candidatesTokenCount") or 0) + int(metadata.get("thoughtsTokenCount") or 0)
    out = oai.usage(int(metadata.get("promptTokenCount") or 0), completion)
    cached = int(metadata.get("cachedContentTokenCount") or 0)
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


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
            calls.append(oai.tool_call(_call_id(part), call["name"], orjson.dumps(call.get("args") or {}).decode()))
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return {"index": int(candidate.get("index", position)), "message": message, "logprobs": None,
            "finish_reason": _finish(candidate.get("finishReason"), bool(calls)) or "stop"}


class GeminiStreamDecoder(StreamDecoder):
    """``streamGenerateContent?alt=sse`` events (each a whole ``GenerateContentResponse``) → OpenAI chunks.
    Text parts arrive as fragments; a ``functionCall`` part arrives whole and becomes one tool-call delta. Each
    candidate (``candidateCount`` > 1) streams under its own ``choices[].index``."""

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self._sse = SSEParser()
        self._model = model
        self._include_usage = include_usage
        self._id = f"chatcmpl-{uuid.uuid4().hex}"
        self._created = oai.now()
        self._opened: set[int] = set()
        """Candidates whose role chunk was sent."""
        self._finished: set[int] = set()
        self._blocked = False
        self._calls: dict[int, int] = {}
        """Candidate → tool calls sent so far."""
        self._usage: JSON | None = None

    def feed(self, data: bytes) -> list[JSON]:
        return self._translate(self._sse.feed(data))

    def close(self) -> list[JSON]:
        chunks = self._translate(self._sse.close())
        if not self._blocked and not (self._opened and self._opened <= self._finished):
            raise with_chunks_before(BadUpstreamResponse(f"{PROVIDER} ended the stream without a finish reason"), chunks)
        if self._include_usage and self._usage is not None:
            chunks.append(oai.usage_chunk(id=self._id, model=self._model, created=self._created, usage=self._usage))
        return chunks

    def _chunk(self, index: int, delta: JSON, finish: str | None = None) -> JSON:
        return oai.chat_chunk(id=self._id, model=self._model, created=self._created, delta=delta,
                              finish_reason=finish, index=index)

    def _translate(self, events: list[Any]) -> list[JSON]:
        return decode_each(events, self._event)

    def _event(self, event: Any) -> list[JSON]:
        return self._answer(event_object(event.data, PROVIDER))

    def _answer(self, answer: JSON) -> list[JSON]:
        error = answer.get("error")
        if isinstance(error, dict):
            status = int(error.get("code") or 502)
            raise UpstreamError(f"{PROVIDER} error: {error.get('message', '')}", status=status if status >= 400 else 502)
        if answer.get("usageMetadata"):
            self._usage = usage_of(answer["usageMetadata"])
        out: list[JSON] = []
        if not self._opened:
            out.extend(self._open(0))
        candidates = answer.get("candidates") or []
        if not candidates and answer.get("promptFeedback", {}).get("blockReason"):
            self._blocked = True
            out.append(self._chunk(0, {}, "content_filter"))
        for position, candidate in enumerate(candidates):
            out.extend(self._candidate(int(candidate.get("index", position)), candidate))
        return out

    def _open(self, index: int) -> list[JSON]:
        if index in self._opened:
            return []
        self._opened.add(index)
        return [self._chunk(index, {"role": "assistant", "content": ""})]

    def _candidate(self, index: int, candidate: JSON) -> list[JSON]:
        out = self._open(index)
        for part in (candidate.get("content") or {}).get("parts") or []:
            if part.get("thought"):
                continue
            if isinstance(part.get("text"), str) and part["text"]:
                out.append(self._chunk(index, {"content": part["text"]}))
            elif isinstance(part.get("functionCall"), dict):
                call = part["functionCall"]
                arguments = orjson.dumps(call.get("args") or {}).decode()
                number = self._calls.get(index, 0)
                delta = {"index": number, **oai.tool_call(_call_id(part), str(call.get("name", "")), arguments)}
                self._calls[index] = number + 1
                out.append(self._chunk(index, {"tool_calls": [delta]}))
        reason = candidate.get("finishReason")
        if reason is not None:
            self._finished.add(index)
            out.append(self._chunk(index, {}, _finish(reason, self._calls.get(index, 0) > 0)))
        return out
