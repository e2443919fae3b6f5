"""Reading the tool side of an OpenAI chat request, for translators to providers with their own tool format.

OpenAI's shapes (https://platform.openai.com/docs/api-reference/chat/create): a tool is
``{"type": "function", "function": {"name", "description", "parameters"}}``; an assistant's tool call carries
its ``function.arguments`` as a JSON string; ``tool_choice`` is ``none``, ``auto``, ``required`` or
``{"type": "function", "function": {"name"}}``.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from ..errors import BadRequest
from ..json_types import JSON

ToolChoiceMode = Literal["auto", "none", "required", "function"]


def tool_function(tool: Any) -> JSON:
    """The ``function`` object of a function tool; 400 unless ``tool`` is one with a name."""
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise BadRequest("each tool must be a function with a name", param="tools")
    return function


def call_arguments(function: JSON) -> Any:
    """A tool call's parsed ``arguments`` (missing or empty means ``{}``); 400 unless they are a JSON string."""
    try:
        return orjson.loads(function.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        raise BadRequest("tool call arguments must be a JSON string", param="messages") from None


def tool_choice(choice: Any) -> tuple[ToolChoiceMode, Any]:
    """OpenAI ``tool_choice`` as a mode and, for ``function``, the function's name (absent means ``auto``);
    400 for anything else."""
    if choice is None or choice == "auto":
        return "auto", None
    if choice == "none":
        return "none", None
    if choice == "required":
        return "required", None
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return "function", choice["function"].get("name")
    raise BadRequest("tool_choice must be none, auto, required or a function", param="tool_choice")
