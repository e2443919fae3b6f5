"""What the proxy checks in a provider's answer before relaying it.

- :func:`check_answer`: a 2xx answer, translated into the OpenAI format, has the shape of its task (chat:
  ``choices`` of objects with a ``message`` object; completions: ``choices`` of objects with a ``text``;
  embeddings: ``data`` of objects with an ``embedding``), or the caller gets a 502 (``docs/proxy.md``). Checked
  once for every provider, after its adapter's translation, so a pass-through provider is held to it too.
- :func:`redacted`: a provider message (an error answer, an error event in a stream) never carries the
  entity's own credential back: every credential the proxy sent on the call (header values, URL query values)
  is replaced by ``[redacted]``, and the message is cut at :data:`MAX_MESSAGE_CHARS`. The caller and the log
  get the same redacted message.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from ..errors import BadUpstreamResponse, GatewayError
from ..spec import Task
from .base import UpstreamRequest

MAX_MESSAGE_CHARS = 2000
"""The longest provider message relayed to a caller or logged."""

_SECRET_HEADER = re.compile(r"auth|key|token|secret|signature|security|credential", re.IGNORECASE)
_PIECES = re.compile(r"[\s,=]+")
_MIN_SECRET = 8
"""Pieces shorter than this are not credentials (``Bearer``, ``AWS4-HMAC-SHA256`` parts are longer anyway)."""


def check_answer(provider: str, task: Task, answer: object) -> None:
    """Raise :class:`BadUpstreamResponse` (502) when ``answer`` does not have ``task``'s OpenAI shape."""
    if not isinstance(answer, dict):
        raise _wrong(provider, "it is not a JSON object")
    if task == "llm/v1/embeddings":
        data = answer.get("data")
        if not isinstance(data, list) or not all(
                isinstance(item, dict) and isinstance(item.get("embedding"), list | str) for item in data):
            raise _wrong(provider, "'data' is not a list of embedding objects")
        return
    choices = answer.get("choices")
    if not isinstance(choices, list):
        raise _wrong(provider, "'choices' is not a list")
    for choice in choices:
        if not isinstance(choice, dict):
            raise _wrong(provider, "a choice is not an object")
        if task == "llm/v1/chat":
            if not isinstance(choice.get("message"), dict):
                raise _wrong(provider, "a choice has no 'message' object")
        elif not isinstance(choice.get("text"), str | None):
            raise _wrong(provider, "a choice's 'text' is not a string")


def _wrong(provider: str, why: str) -> BadUpstreamResponse:
    return BadUpstreamResponse(f"{provider} returned an answer of the wrong shape ({why})")


def secrets_of(req: UpstreamRequest) -> list[str]:
    """The credentials sent on ``req``: values of authentication headers and of the URL's query, whole and in
    their pieces (the token of ``Bearer <token>``, the parts of a SigV4 ``Authorization``), longest first."""
    found: set[str] = set()
    for name, value in req.headers.items():
        if _SECRET_HEADER.search(name):
            found.add(value)
            found.update(_PIECES.split(value))
    query = urlsplit(req.url).query
    if query:
        for _, value in parse_qsl(query):
            found.add(value)
    return sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True)


def redacted(err: GatewayError, secrets: list[str]) -> GatewayError:
    """``err`` with every one of ``secrets`` replaced in its message, which is cut at :data:`MAX_MESSAGE_CHARS`."""
    message = err.message
    for secret in secrets:
        if secret in message:
            message = message.replace(secret, "[redacted]")
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + f"... ({len(err.message) - MAX_MESSAGE_CHARS} more characters cut)"
    if message is not err.message:
        err.message = message
        err.args = (message,)
    return err
