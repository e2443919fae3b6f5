"""Reading OpenAI chat messages, for translators to providers with their own message format.

:func:`text_of` reads a message's text, :func:`user_content` a user message's text and image parts,
:func:`thinking_blocks` the reasoning blocks an assistant message carries back. :func:`split_turns` serves APIs that, like Bedrock Converse and Gemini,
take the system prompt apart from the conversation and have no ``tool`` role (tool results go in a user turn):
it hands back the system texts and each other message's content blocks with the role of the turn they belong
in, leaving the provider's rule for joining consecutive turns of one role to the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from ..errors import BadRequest
from ..json_types import JSON

TurnRole = Literal["user", "assistant"]


def text_of(content: Any, *, role: str) -> str:
    """The text of an OpenAI message content (a string or a list of text parts); 400 for other parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise BadRequest(f"{role} message content may only hold text parts here", param="messages")
            texts.append(part["text"])
        return "".join(texts)
    raise BadRequest(f"{role} message content must be a string or a list of parts", param="messages")


def user_content(content: Any, *, image: Callable[[Any], JSON], provider: str) -> list[JSON]:
    """A user message's content as ``{"text": ...}`` blocks (none for an empty string) and ``image(image_url)``
    blocks, the shape Converse and Gemini share; 400 for any other part."""
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequest("user message content must be a string or a list of parts", param="messages")
    blocks: list[JSON] = []
    for part in content:
        if not isinstance(part, dict):
            raise BadRequest("user message parts must be objects", param="messages")
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            blocks.append({"text": part["text"]})
        elif kind == "image_url":
            blocks.append(image(part.get("image_url")))
        else:
            raise BadRequest(f"{provider} does not support {kind!r} message parts", param="messages")
    return blocks


def split_turns(
    messages: Any,
    *,
    user: Callable[[Any], list[JSON]],
    assistant: Callable[[JSON], list[JSON]],
    tool_result: Callable[[JSON], JSON],
) -> tuple[list[str], list[tuple[TurnRole, list[JSON]]]]:
    """The non-empty ``system``/``developer`` texts, and in order each other message's blocks with its turn's
    role: ``user(content)`` of a user message, ``assistant(message)`` of an assistant message and
    ``[tool_result(message)]`` (a user turn) of a tool message. 400 unless ``messages`` is a non-empty list of
    objects with known roles and some blocks to send besides the system texts."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list", param="messages")
    system: list[str] = []
    turns: list[tuple[TurnRole, list[JSON]]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{i}] must be an object", param="messages")
        role = message.get("role")
        if role in ("system", "developer"):
            text = text_of(message.get("content"), role=str(role))
            if text:
                system.append(text)
        elif role == "user":
            turns.append(("user", user(message.get("content"))))
        elif role == "assistant":
            turns.append(("assistant", assistant(message)))
        elif role == "tool":
            turns.append(("user", [tool_result(message)]))
        else:
            raise BadRequest(f"messages[{i}] has an unsupported role {role!r}", param="messages")
    if not any(blocks for _, blocks in turns):
        raise BadRequest("messages must contain at least one user message", param="messages")
    return system, turns


THINKING_BLOCKS = "thinking_blocks"
"""The assistant message field (a modelgate extension, as LiteLLM names it) that carries a model's signed
reasoning in Anthropic's block shapes, ``{"type": "thinking", "thinking", "signature"}`` and
``{"type": "redacted_thinking", "data"}`` (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking).
Answers put it on the message (streams: one whole block per delta once the block is complete) next to
``reasoning_content``, the plain text; a caller that sends the assistant message back as it came (the ``openai``
client keeps unknown fields) returns it, and the translators put the blocks back first in the assistant turn,
where Anthropic requires them when thinking is on and tools are used."""


def thinking_blocks(message: JSON) -> list[JSON]:
    """The :data:`THINKING_BLOCKS` of an assistant message (none when absent); 400 unless each is a ``thinking``
    block with string ``thinking`` and ``signature`` or a ``redacted_thinking`` block with string ``data``."""
    blocks = message.get(THINKING_BLOCKS)
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        raise BadRequest("thinking_blocks must be a list", param="messages")
    out: list[JSON] = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "thinking" and isinstance(block.get("thinking"), str) and isinstance(block.get("signature"), str):
            out.append({"type": "thinking", "thinking": block["thinking"], "signature": block["signature"]})
        elif kind == "redacted_thinking" and isinstance(block.get("data"), str):
            out.append({"type": "redacted_thinking", "data": block["data"]})
        else:
            raise BadRequest(
                "thinking_blocks must hold thinking blocks (thinking, signature) or redacted_thinking blocks (data)",
                param="messages",
            )
    return out
