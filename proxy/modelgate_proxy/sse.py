"""Server-sent events: an incremental parser for upstream streams and the encoder for our own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .errors import BadUpstreamResponse

MAX_LINE_BYTES = 1024 * 1024
"""The longest line of an upstream event stream; a stream whose line grows past it ends with an error."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str | None = None
    id: str | None = None


class SSEParser:
    """Feed bytes as they arrive; get whole events back (per the WHATWG event-stream rules)."""

    __slots__ = ("_buf", "_data", "_event", "_id", "_size")

    def __init__(self) -> None:
        self._buf = b""
        self._size = 0
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk if self._buf else chunk
        events: list[SSEEvent] = []
        if b"\n" not in buf:
            if len(buf) > MAX_LINE_BYTES:
                self._buf = b""
                raise BadUpstreamResponse(f"the provider's event stream has a line longer than {MAX_LINE_BYTES} bytes")
            self._buf = buf
            return events
        # One split per feed: slicing the buffer line by line copied it once per line (quadratic in the
        # chunk size), ~5% of the proxy's CPU when streaming (bench/RESULTS.md).
        lines = buf.split(b"\n")
        self._buf = lines.pop()  # the unfinished last line (empty when the chunk ended with a newline)
        if len(self._buf) > MAX_LINE_BYTES:
            self._buf = b""
            raise BadUpstreamResponse(f"the provider's event stream has a line longer than {MAX_LINE_BYTES} bytes")
        for raw in lines:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            self._line(line.decode("utf-8", errors="replace"), events)
        return events

    def close(self) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        if self._buf:
            self._line(self._buf.decode("utf-8", errors="replace").rstrip("\r"), events)
            self._buf = b""
        self._line("", events)
        return events

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if line == "":
            if self._data:
                events.append(SSEEvent("\n".join(self._data), self._event, self._id))
            self._data, self._event, self._size = [], None, 0
            return
        if line.startswith(":"):
            return
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._size += len(value)
            if self._size > MAX_LINE_BYTES:
                raise BadUpstreamResponse(f"the provider's event stream has an event longer than {MAX_LINE_BYTES} "
                                          "bytes")
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            self._id = value


def encode_event(payload: dict[str, Any]) -> bytes:
    """One ``data: <json>`` event."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


DONE = b"data: [DONE]\n\n"
