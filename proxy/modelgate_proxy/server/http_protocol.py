"""The HTTP/1.1 protocol the proxy serves with: uvicorn's httptools protocol with a bound on the request head.

httptools keeps the request line and headers in memory until they are complete, and uvicorn sets no limit on
them, so one connection could send hundreds of megabytes of header and grow the process until the pod is
OOM-killed. This protocol answers ``431 Request Header Fields Too Large`` and closes the connection as soon
as an unfinished request head passes :data:`MAX_HEAD_BYTES` (Envoy's default is 60 KiB, nginx's 32 KiB).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
"""The request line and headers together, in bytes."""

_MESSAGE = b"the request line and headers exceed 65536 bytes"
_RESPONSE_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_MESSAGE)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _MESSAGE
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Counts the bytes of each request head; past :data:`MAX_HEAD_BYTES`, 431 and close."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = True
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._head_open:
            self._head_bytes += len(data)
        super().data_received(data)
        # Checked after parsing, so a head that completes within this read (with the body behind it) passes.
        if self._head_open and self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self.logger.warning("refused a request whose head exceeds %d bytes (431)", MAX_HEAD_BYTES)
            self.transport.write(_RESPONSE_431)
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._head_open = False
        super().on_headers_complete()


def protocol_settings() -> dict[str, Any]:
    """The uvicorn ``Config`` arguments that select the bounded protocol."""
    return {"http": BoundedHttpToolsProtocol, "h11_max_incomplete_event_size": MAX_HEAD_BYTES}

