"""The HTTP/1.1 protocol the proxy serves with: uvicorn's httptools protocol with bounds on the request head and
on the time a request may take to arrive, and protocol errors answered in JSON.

- httptools keeps the request line and headers in memory until they are complete, and uvicorn sets no limit on
  them, so one connection could grow the process until the pod is OOM-killed. A head (request line, headers and
  the blank line that ends them) of more than :data:`MAX_HEAD_BYTES` is answered ``431`` and the connection
  closed; the count is exact whatever the reads' sizes (the end of the head is found in the bytes as they
  arrive), and nothing past the limit reaches the parser.
- A head still incomplete :attr:`BoundedHttpToolsProtocol.head_timeout` seconds after its first byte, or a body
  still incomplete :attr:`BoundedHttpToolsProtocol.body_timeout` seconds after its head, is answered ``408`` and
  the connection closed (slow-loris connections end). A request that arrives in one read sets no timer.
- What httptools cannot parse (a bad ``Content-Length``, ``Content-Length`` with ``Transfer-Encoding``, control
  characters, obsolete line folding) is a ``400`` in JSON, in the error shape of the path when the request line
  was read (uvicorn answers plain text).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..error_shapes import Shape, error_body
from ..errors import GatewayError, MalformedRequest, RequestHeadTooLarge, RequestTimedOut

ON_DISCONNECT = "modelgate.on_disconnect"
"""Scope key of a list of callables the protocol calls when the request's connection is lost: how a query route
learns that its caller went away without a task waiting for ``http.disconnect``."""

MAX_HEAD_BYTES = 64 * 1024
"""The request line, headers and the blank line after them together, in bytes."""

DEFAULT_HEAD_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 60.0

_END = b"\r\n\r\n"
_OPENAI_PATHS = (b"/serving-endpoints/chat/completions", b"/serving-endpoints/completions",
                 b"/serving-endpoints/embeddings")
_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def _shape(url: bytes) -> Shape:
    path = url.split(b"?", 1)[0]
    if path in _OPENAI_PATHS or (path.startswith(b"/serving-endpoints/") and not path.endswith(b"/invocations")
                                 and path.count(b"/") > 2):
        return "openai"
    return "databricks"


def error_response(url: bytes, err: GatewayError) -> bytes:
    """A whole HTTP/1.1 response for ``err`` that closes the connection, in the shape of ``url``'s API."""
    body = error_body(_shape(url), err)
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % (err.status, _REASONS.get(err.status, b"Error"), len(body))) + body


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Counts the bytes of each request head and times heads and bodies (see the module)."""

    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = True
        self._head_bytes = 0
        self._tail = b""
        self._body_open = False
        self._timer: asyncio.TimerHandle | None = None
        self._on_lost: list[Callable[[], None]] = []

    def data_received(self, data: bytes) -> None:
        if self._head_open and not self._count_head(data):
            self._refuse(RequestHeadTooLarge(f"the request line and headers exceed {MAX_HEAD_BYTES} bytes"))
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            self.logger.warning("refused a request that is not valid HTTP/1.1 (%s)", exc)
            self._refuse(MalformedRequest(f"the request is not valid HTTP/1.1 ({str(exc)[:120]})"))
            return
        # A head begun (not just the room for the next request's head after a complete one) or a body under way.
        started_head = self._head_open and self._head_bytes > 0
        if self._timer is None and (started_head or self._body_open) and not self.transport.is_closing():
            if started_head:
                self._timer = self.loop.call_later(self.head_timeout, self._late, "head")
            else:
                self._timer = self.loop.call_later(self.body_timeout, self._late, "body")

    def _count_head(self, data: bytes) -> bool:
        """Count ``data`` into the open head; False when the head passes :data:`MAX_HEAD_BYTES`."""
        end = data.find(_END)
        if end == -1 and self._tail:
            joined = self._tail + data[:3]
            at = joined.find(_END)
            if at != -1:
                end = at - len(self._tail)
        if end == -1:
            self._head_bytes += len(data)
            self._tail = (self._tail + data)[-3:]
            return self._head_bytes <= MAX_HEAD_BYTES
        size = self._head_bytes + end + len(_END)
        self._head_bytes = 0
        self._tail = b""
        self._head_open = False
        return size <= MAX_HEAD_BYTES

    def _refuse(self, err: GatewayError) -> None:
        self._cancel_timer()
        if not self.transport.is_closing():
            if err.status == 431:
                self.logger.warning("refused a request whose head exceeds %d bytes (431)", MAX_HEAD_BYTES)
            cycle = self.cycle
            if cycle is None or cycle.response_complete or not cycle.response_started:
                self.transport.write(error_response(getattr(self, "url", b""), err))
            self.transport.close()

    def _late(self, part: str) -> None:
        self._timer = None
        if (part == "head" and self._head_open) or (part == "body" and self._body_open):
            self.logger.warning("closed a connection whose request %s did not arrive in time (408)", part)
            seconds = self.head_timeout if part == "head" else self.body_timeout
            self._refuse(RequestTimedOut(f"the request {part} did not arrive within {seconds:g} seconds"))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = True

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._body_open = True
        self._cancel_timer()
        self.scope[ON_DISCONNECT] = self._on_lost  # type: ignore[literal-required]
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._body_open = False
        self._head_open = True  # what follows on the connection is the next request's head
        self._cancel_timer()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)
        for callback in list(self._on_lost):
            callback()


def configure(*, head_timeout: float | None = None, body_timeout: float | None = None) -> None:
    """Set the protocol's timeouts for this process (``serve`` calls it in every worker)."""
    if head_timeout is not None:
        BoundedHttpToolsProtocol.head_timeout = head_timeout
    if body_timeout is not None:
        BoundedHttpToolsProtocol.body_timeout = body_timeout


def protocol_settings() -> dict[str, Any]:
    """The uvicorn ``Config`` arguments that select the bounded protocol."""
    return {"http": BoundedHttpToolsProtocol, "h11_max_incomplete_event_size": MAX_HEAD_BYTES}
