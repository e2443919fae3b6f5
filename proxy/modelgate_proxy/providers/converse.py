"""OpenAI chat ↔ the Amazon Bedrock Converse API (``/model/{modelId}/converse`` and ``converse-stream``).

Converse is one request shape for every chat model family on Bedrock (Anthropic Claude, Cohere Command R,
AI21 Jamba, Amazon Nova and Titan Text), with tools, so this module serves all four ``bedrockProvider`` values.
Reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html and
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html.

Reasoning (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ReasoningContentBlock.html and
.../API_runtime_ReasoningContentBlockDelta.html): a ``reasoningContent`` block holds ``reasoningText``
(``text`` and the ``signature`` that must come back unmodified) or ``redactedContent`` (a blob, base64 in JSON).
Answers expose them as ``reasoning_content`` and, in Anthropic's block shapes, ``thinking_blocks``
(``messages.THINKING_BLOCKS``); an assistant message's ``thinking_blocks`` go back first in its turn as
``reasoningContent`` blocks, which Claude requires before ``toolUse`` when thinking is on.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

import orjson

from ..errors import BadRequest, BadUpstreamResponse, UpstreamError
from ..json_types import JSON
from . import openai_objects as oai
from .aws_eventstream import Event, EventStreamReader
from .base import StreamDecoder, decode_each
from .messages import split_turns, text_of, thinking_blocks, user_content
from .params import NOT_FORWARDED, discard, drop_unsupported, pass_through, refuse_rest, sampling_config
from .tool_calls import call_arguments, tool_choice, tool_function

PROVIDER = "amazon-bedrock"

STOP_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
"""Converse ``stopReason`` → OpenAI ``finish_reason``; an unknown one → ``stop``; :data:`FAILED` is an error."""

FAILED = frozenset({"malformed_model_output", "malformed_tool_use"})
"""Stop reasons that mean the model's output is unusable (invalid output, a malformed tool call): a 502, as the
model failed, never a ``stop`` that would pass the broken answer off as complete."""

TOP_K_FIELD: dict[str, tuple[str, ...]] = {
    "anthropic": ("top_k",),
    "cohere": ("k",),
    "amazon": ("inferenceConfig", "topK"),
}
"""Where each family takes ``top_k`` inside ``additionalModelRequestFields`` (AI21 Jamba has none)."""

_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif", "image/webp": "webp"}


def converse_request(payload: JSON, family: str) -> JSON:
    """The Converse request body for an OpenAI chat payload (``payload`` is not modified)."""
    body = dict(payload)
    discard(body, NOT_FORWARDED)
    drop_unsupported(
        body,
        ("n", "seed", "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs",
         "response_format"),
        PROVIDER,
    )
    system, turns = _messages(body.pop("messages", None))
    out: JSON = {"messages": turns}
    if system:
        out["system"] = system
    inference = sampling_config(body, max_tokens="maxTokens", names={"temperature": "temperature", "top_p": "topP"})
    if inference:
        out["inferenceConfig"] = inference
    tool_config = _tool_config(body.pop("tools", None), body.pop("tool_choice", None), turns)
    if tool_config:
        out["toolConfig"] = tool_config
    extra = _additional_fields(body, family)
    if extra:
        out["additionalModelRequestFields"] = extra
    pass_through(body, out, ("guardrailConfig", "performanceConfig", "requestMetadata", "additionalModelResponseFieldPaths"))
    refuse_rest(body, PROVIDER)
    return out


def _additional_fields(body: JSON, family: str) -> JSON:
    extra = body.pop("additionalModelRequestFields", None)
    fields: JSON = dict(extra) if isinstance(extra, dict) else {}
    if extra is not None and not isinstance(extra, dict):
        raise BadRequest("additionalModelRequestFields must be an object", param="additionalModelRequestFields")
    top_k = body.pop("top_k", None)
    if top_k is not None:
        path = TOP_K_FIELD.get(family)
        if path is None:
            raise BadRequest(f"{PROVIDER} {family} models do not support the parameter 'top_k'", param="top_k")
        target = fields
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = top_k
    return fields


def _messages(messages: Any) -> tuple[list[JSON], list[JSON]]:
    system, pieces = split_turns(messages, user=_user_blocks, assistant=_assistant_blocks, tool_result=_tool_result)
    turns: list[JSON] = []
    for role, blocks in pieces:
        _append(turns, role, blocks)
    return [{"text": text} for text in system], turns


def _append(turns: list[JSON], role: str, blocks: list[JSON]) -> None:
    """Converse wants alternating roles: consecutive messages of one role become one message."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        previous: list[JSON] = turns[-1]["content"]
        # Tool results must open the user turn that follows the tool calls.
        results = [b for b in blocks if "toolResult" in b]
        others = [b for b in blocks if "toolResult" not in b]
        if results:
            head = [b for b in previous if "toolResult" in b]
            tail = [b for b in previous if "toolResult" not in b]
            previous[:] = head + results + tail + others
        else:
            previous.extend(others)
        return
    turns.append({"role": role, "content": blocks})


def _user_blocks(content: Any) -> list[JSON]:
    return user_content(content, image=_image_block, provider=PROVIDER)


def _image_block(image: Any) -> JSON:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url.startswith("data:"):
        raise BadRequest(
            f"{PROVIDER} takes images as data: URLs (base64); fetching image URLs is not supported",
            param="messages",
        )
    header, _, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    image_format = _IMAGE_FORMATS.get(media_type.lower())
    if image_format is None or encoding != "base64":
        raise BadRequest("images must be base64 data: URLs of png, jpeg, gif or webp", param="messages")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("an image data: URL is not valid base64", param="messages") from None
    # Converse's JSON protocol carries blob members as base64 text.
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def _assistant_blocks(message: JSON) -> list[JSON]:
    blocks: list[JSON] = [_reasoning_block(b) for b in thinking_blocks(message)]
    text = text_of(message.get("content"), role="assistant")
    if text:
        blocks.append({"text": text})
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise BadRequest("tool_calls must be a list", param="messages")
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str):
            raise BadRequest("each tool call needs an id and a function", param="messages")
        blocks.append(
            {"toolUse": {"toolUseId": call["id"], "name": function.get("name"), "input": call_arguments(function)}}
        )
    return blocks


def _reasoning_block(block: JSON) -> JSON:
    """A thinking block (Anthropic's shape) as a Converse ``reasoningContent`` block."""
    if block["type"] == "thinking":
        return {"reasoningContent": {"reasoningText": {"text": block["thinking"], "signature": block["signature"]}}}
    return {"reasoningContent": {"redactedContent": block["data"]}}


def _thinking_block(reasoning: JSON) -> JSON:
    """A Converse ``reasoningContent`` block as a thinking block (Anthropic's shape)."""
    if "redactedContent" in reasoning:
        return {"type": "redacted_thinking", "data": str(reasoning["redactedContent"])}
    text = reasoning["reasoningText"]
    return {"type": "thinking", "thinking": str(text.get("text") or ""), "signature": str(text.get("signature") or "")}


def _tool_result(message: JSON) -> JSON:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise BadRequest("tool messages need a tool_call_id", param="messages")
    text = text_of(message.get("content"), role="tool")
    return {"toolResult": {"toolUseId": call_id, "content": [{"text": text}], "status": "success"}}


def _tool_config(tools: Any, choice: Any, turns: list[JSON]) -> JSON | None:
    if not tools:
        if _has_tool_blocks(turns):
            raise BadRequest(f"{PROVIDER} needs the tools in the request when the messages hold tool calls", param="tools")
        return None
    if not isinstance(tools, list):
        raise BadRequest("tools must be a list", param="tools")
    specs = [{"toolSpec": _tool_spec(tool)} for tool in tools]
    config: JSON = {"tools": specs}
    mode, name = tool_choice(choice)
    if mode == "none":
        # Converse has no "none": leave the tools out unless the history needs them.
        return config if _has_tool_blocks(turns) else None
    if mode == "auto":
        config["toolChoice"] = {"auto": {}}
    elif mode == "required":
        config["toolChoice"] = {"any": {}}
    else:
        config["toolChoice"] = {"tool": {"name": name}}
    return config


def _tool_spec(tool: Any) -> JSON:
    function = tool_function(tool)
    spec: JSON = {
        "name": function["name"],
        "inputSchema": {"json": function.get("parameters") or {"type": "object", "properties": {}}},
    }
    if function.get("description"):
        spec["description"] = function["description"]
    return spec


def _has_tool_blocks(turns: list[JSON]) -> bool:
    return any("toolUse" in b or "toolResult" in b for turn in turns for b in turn["content"])


# --- answers -------------------------------------------------------------------------------------------


def chat_from_converse(answer: Any, model: str) -> JSON:
    """The ``chat.completion`` for a Converse answer; :class:`BadUpstreamResponse` if it is not one."""
    try:
        blocks = answer["output"]["message"]["content"]
        reason = answer["stopReason"]
        if not isinstance(blocks, list):
            raise TypeError
        texts: list[str] = []
        calls: list[JSON] = []
        reasoning: list[JSON] = []
        for block in blocks:
            if "text" in block:
                texts.append(str(block["text"]))
            elif "toolUse" in block:
                use = block["toolUse"]
                calls.append(oai.tool_call(use["toolUseId"], use["name"], orjson.dumps(use.get("input", {})).decode()))
            elif "reasoningContent" in block:
                reasoning.append(_thinking_block(block["reasoningContent"]))
    except (KeyError, TypeError, AttributeError):
        raise BadUpstreamResponse(f"{PROVIDER} returned a Converse answer without output.message") from None
    _check_stop(reason)
    return oai.chat_completion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        model=model,
        content="".join(texts) if texts or not calls else None,
        tool_calls=calls,
        finish_reason=STOP_REASONS.get(str(reason), "stop"),
        usage=usage_of(answer.get("usage")),
        thinking_blocks=reasoning,
    )


def _check_stop(reason: Any) -> None:
    if reason in FAILED:
        raise UpstreamError(f"{PROVIDER} error: the model's output could not be used ({reason})", status=502)


def usage_of(usage: Any) -> JSON | None:
    """Converse usage → OpenAI usage; prompt tokens include cache reads and writes, the reads also as
    ``prompt_tokens_details.cached_tokens`` (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_TokenUsage.html)."""
    if not isinstance(usage, dict):
        return None
    cached = int(usage.get("cacheReadInputTokens") or 0)
    prompt = int(usage.get("inputTokens") or 0) + cached + int(usage.get("cacheWriteInputTokens") or 0)
    out = oai.usage(prompt, int(usage.get("outputTokens") or 0))
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


class ConverseStreamDecoder(StreamDecoder):
    """ConverseStream events → ``chat.completion.chunk`` objects (text and tool-call deltas, usage last)."""

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self._reader = EventStreamReader(PROVIDER)
        self._model = model
        self._include_usage = include_usage
        self._id = f"chatcmpl-{uuid.uuid4().hex}"
        self._created = oai.now()
        self._tools: dict[int, int] = {}
        """contentBlockIndex → OpenAI tool_calls index."""
        self._reasoning: dict[int, JSON] = {}
        """contentBlockIndex → the reasoning block being streamed (text, signature, redactedContent)."""
        self._usage: JSON | None = None
        self._started = False
        self._finished = False

    def feed(self, data: bytes) -> list[JSON]:
        return decode_each(self._reader.feed(data), self._event)

    def _event(self, event: Event) -> list[JSON]:
        return self._on(event.type, event.payload)

    def close(self) -> list[JSON]:
        if self._reader.pending() or not self._finished:
            raise BadUpstreamResponse(f"{PROVIDER} ended the stream before the message was complete")
        if self._include_usage and self._usage is not None:
            return [oai.usage_chunk(id=self._id, model=self._model, created=self._created, usage=self._usage)]
        return []

    def _chunk(self, delta: JSON, finish_reason: str | None = None) -> JSON:
        return oai.chat_chunk(id=self._id, model=self._model, created=self._created, delta=delta,
                              finish_reason=finish_reason)

    def _on(self, kind: str, event: JSON) -> list[JSON]:
        out: list[JSON] = []
        if not self._started and kind in ("messageStart", "contentBlockStart", "contentBlockDelta"):
            self._started = True
            out.append(self._chunk({"role": "assistant", "content": ""}))
        if kind == "contentBlockStart":
            use = (event.get("start") or {}).get("toolUse")
            if isinstance(use, dict):
                out.append(self._tool_start(int(event.get("contentBlockIndex", 0)), use))
        elif kind == "contentBlockDelta":
            out.extend(self._delta(int(event.get("contentBlockIndex", 0)), event.get("delta") or {}))
        elif kind == "contentBlockStop":
            out.extend(self._reasoning_done(int(event.get("contentBlockIndex", 0))))
        elif kind == "messageStop":
            for block in list(self._reasoning):
                out.extend(self._reasoning_done(block))
            _check_stop(event.get("stopReason"))
            self._finished = True
            reason = STOP_REASONS.get(str(event.get("stopReason")), "stop")
            out.append(self._chunk({}, reason))
        elif kind == "metadata":
            self._usage = usage_of(event.get("usage"))
        return out

    def _tool_start(self, block: int, use: JSON) -> JSON:
        index = self._tools.setdefault(block, len(self._tools))
        call = {"index": index, **oai.tool_call(str(use.get("toolUseId", "")), str(use.get("name", "")), "")}
        return self._chunk({"tool_calls": [call]})

    def _delta(self, block: int, delta: JSON) -> list[JSON]:
        if isinstance(delta.get("text"), str):
            return [self._chunk({"content": delta["text"]})]
        use = delta.get("toolUse")
        if isinstance(use, dict) and block in self._tools:
            fragment = {"index": self._tools[block], "function": {"arguments": str(use.get("input", ""))}}
            return [self._chunk({"tool_calls": [fragment]})]
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict):
            return self._reasoning_delta(block, reasoning)
        return []  # citations have no OpenAI chunk equivalent

    def _reasoning_delta(self, block: int, delta: JSON) -> list[JSON]:
        state = self._reasoning.setdefault(block, {"text": "", "signature": "", "redactedContent": None})
        if isinstance(delta.get("redactedContent"), str):
            state["redactedContent"] = (state["redactedContent"] or "") + delta["redactedContent"]
        if isinstance(delta.get("signature"), str):
            state["signature"] += delta["signature"]
        text = delta.get("text")
        if isinstance(text, str) and text:
            state["text"] += text
            return [self._chunk({"reasoning_content": text})]
        return []

    def _reasoning_done(self, block: int) -> list[JSON]:
        """The whole reasoning block, once its content block stops, as a ``thinking_blocks`` delta."""
        state = self._reasoning.pop(block, None)
        if state is None:
            return []
        if state["redactedContent"] is not None:
            reasoning: JSON = {"redactedContent": state["redactedContent"]}
        else:
            reasoning = {"reasoningText": {"text": state["text"], "signature": state["signature"]}}
        return [self._chunk({"thinking_blocks": [_thinking_block(reasoning)]})]
