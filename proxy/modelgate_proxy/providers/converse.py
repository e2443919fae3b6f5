"""OpenAI chat ↔ the Amazon Bedrock Converse API (``/model/{modelId}/converse`` and ``converse-stream``).

Converse is one request shape for every chat model family on Bedrock (Anthropic Claude, Cohere Command R,
AI21 Jamba, Amazon Nova and Titan Text), with tools, so this module serves all four ``bedrockProvider`` values.
Reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html and
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

import orjson

from ..errors import BadRequest, BadUpstreamResponse
from . import openai_objects as oai
from .aws_eventstream import EventStreamReader
from .base import StreamDecoder
from .messages import split_turns, text_of, user_content
from .params import NOT_FORWARDED, discard, drop_unsupported, pass_through, refuse_rest, sampling_config
from .tool_calls import call_arguments, tool_choice, tool_function

JSON = dict[str, Any]

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
"""Converse ``stopReason`` → OpenAI ``finish_reason``; anything else (``malformed_model_output`` …) → ``stop``."""

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
    blocks: list[JSON] = []
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
        for block in blocks:
            if "text" in block:
                texts.append(str(block["text"]))
            elif "toolUse" in block:
                use = block["toolUse"]
                calls.append(oai.tool_call(use["toolUseId"], use["name"], orjson.dumps(use.get("input", {})).decode()))
    except (KeyError, TypeError):
        raise BadUpstreamResponse(f"{PROVIDER} returned a Converse answer without output.message") from None
    return oai.chat_completion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        model=model,
        content="".join(texts) if texts or not calls else None,
        tool_calls=calls,
        finish_reason=STOP_REASONS.get(str(reason), "stop"),
        usage=usage_of(answer.get("usage")),
    )


def usage_of(usage: Any) -> JSON | None:
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("inputTokens") or 0) + int(usage.get("cacheReadInputTokens") or 0)
    prompt += int(usage.get("cacheWriteInputTokens") or 0)
    return oai.usage(prompt, int(usage.get("outputTokens") or 0))


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
        self._usage: JSON | None = None
        self._started = False
        self._finished = False

    def feed(self, data: bytes) -> list[JSON]:
        chunks: list[JSON] = []
        for event in self._reader.feed(data):
            chunks.extend(self._on(event.type, event.payload))
        return chunks

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
        elif kind == "messageStop":
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
        return []  # reasoning content and citations have no OpenAI chunk equivalent
