"""Reading OpenAI chat messages, for translators to providers with their own message format.

:func:`text_of` reads a message's text, :func:`user_content` a user message's text and image parts. :func:`split_turns` serves APIs that, like Bedrock Converse and Gemini,
take the system prompt apart from the conversation and have no ``tool`` role (tool results go in a user turn):
it hands back the system texts and each other message's content blocks with the role of the turn they belong
in, leaving the provider's rule for joining consecutive turns of one role to the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from ..errors import BadRequest

JSON = dict[str, Any]

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
