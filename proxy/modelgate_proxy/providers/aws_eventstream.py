"""Reading Bedrock's binary ``application/vnd.amazon.eventstream`` responses.

Framing is parsed by botocore's own ``EventStreamBuffer`` (prelude, headers, payload and both CRC-32 checks);
this module only turns its messages into ``(event type, JSON payload)`` pairs and exception frames into
:class:`UpstreamError` with the status Bedrock documents for that exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from botocore.eventstream import EventStreamBuffer, ParserError

from ..errors import BadUpstreamResponse, UpstreamError
from ..json_types import JSON

EXCEPTION_STATUS: dict[str, int] = {
    "validationexception": 400,
    "servicequotaexceededexception": 400,
    "accessdeniedexception": 403,
    "resourcenotfoundexception": 404,
    "modeltimeoutexception": 408,
    "throttlingexception": 429,
    "modelnotreadyexception": 429,
    "modelerrorexception": 502,
    "modelstreamerrorexception": 502,
    "internalserverexception": 500,
    "serviceunavailableexception": 503,
}
"""Bedrock exception name (lower case) → the status the caller sees. Bedrock's own 424 for a failed model
(``ModelErrorException``, ``ModelStreamErrorException``) is reported as 502: the upstream model failed."""


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    payload: JSON


class EventStreamReader:
    """Feed raw bytes in any split; get whole events back."""

    def __init__(self, provider: str) -> None:
        self._buffer = EventStreamBuffer()
        self._provider = provider

    def feed(self, data: bytes) -> Iterator[Event]:
        """The whole events ``data`` completes, one at a time: an exception frame raises when it is reached, so
        the events before it can be translated first (see ``base.decode_each``)."""
        self._buffer.add_data(data)
        messages = iter(self._buffer)
        while True:
            try:
                message = next(messages)
            except StopIteration:
                return
            except ParserError as exc:
                raise BadUpstreamResponse(
                    f"{self._provider} sent a malformed event stream ({type(exc).__name__})"
                ) from None
            yield self._event(message.headers, message.payload)

    def pending(self) -> bool:
        """True when bytes of an unfinished frame are buffered."""
        return bool(self._buffer._data)

    def _event(self, headers: dict[str, Any], payload: bytes) -> Event:
        kind = headers.get(":message-type")
        if kind == "exception":
            raise stream_exception(self._provider, str(headers.get(":exception-type", "")), payload)
        if kind == "error":
            code = str(headers.get(":error-code", "error"))
            message = str(headers.get(":error-message", ""))
            raise UpstreamError(f"{self._provider} stream error ({code}): {message}", status=502)
        if kind != "event":
            raise BadUpstreamResponse(f"{self._provider} sent an event stream message of unknown type")
        try:
            body = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            raise BadUpstreamResponse(f"{self._provider} sent an event that is not JSON") from None
        if not isinstance(body, dict):
            raise BadUpstreamResponse(f"{self._provider} sent an event that is not a JSON object")
        return Event(str(headers.get(":event-type", "")), body)


def stream_exception(provider: str, exception_type: str, payload: bytes) -> UpstreamError:
    message = ""
    try:
        body = orjson.loads(payload)
        if isinstance(body, dict):
            message = str(body.get("message") or body.get("Message") or "")
    except orjson.JSONDecodeError:
        message = payload.decode("utf-8", errors="replace")[:500]
    status = EXCEPTION_STATUS.get(exception_type.lower(), 502)
    name = exception_type[:1].upper() + exception_type[1:]
    return UpstreamError(f"{provider} error ({name}): {message}".rstrip(": "), status=status)
