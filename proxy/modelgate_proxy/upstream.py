"""The one pooled upstream HTTP client of a proxy process (aiohttp, keep-alive).

aiohttp was chosen on measurement: in ``../shared/bench`` a bare starlette forwarder did about 2,000 requests/s
through aiohttp and about 190 through ``httpx.AsyncClient`` on the 2-core machine. Transport failures are mapped
here, once (:func:`transport_error`; the server's stream pump and the guardrails' stream buffer use it too): a
timeout is a 504, a connection failure a 502. Messages name the provider host, never a URL query or a header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from .budget import Ticket
from .errors import BadUpstreamResponse, GatewayError, UpstreamTimeout, UpstreamUnavailable, UpstreamUnreachable
from .providers.base import UpstreamRequest
from .traces import outgoing_headers

TRANSPORT_ERRORS = (TimeoutError, aiohttp.ClientError)
"""What a transport failure raises (aiohttp's errors, and its timeouts, which are :class:`TimeoutError`)."""

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 300.0
DEFAULT_MAX_ANSWER_BYTES = 16 * 1024 * 1024
"""16 MiB: the largest provider answer read (a whole answer, or a stream buffered for output guardrails)."""
MAX_ERROR_BODY_BYTES = 64 * 1024
"""Of a provider's error answer only this much is read: the message in it is all the proxy relays."""


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    """Timeouts and pool size of the upstream client."""

    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    """Seconds to establish a connection (TCP + TLS) to a provider."""
    read_timeout: float = DEFAULT_READ_TIMEOUT
    """Seconds to wait for the next bytes of a provider's answer (also between stream events)."""
    pool_size: int = 1024
    """Most simultaneous upstream connections."""
    keepalive_timeout: float = 30.0
    """Seconds an idle pooled connection is kept."""
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES
    """The largest provider answer read; a larger one is a 502."""


class Upstream:
    """Owns the process's ``aiohttp.ClientSession``; created in the app's lifespan (inside the event loop)."""

    def __init__(self, settings: UpstreamSettings | None = None) -> None:
        self.settings = settings or UpstreamSettings()
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.settings.connect_timeout, sock_read=self.settings.read_timeout
        )

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.settings.pool_size,
                limit_per_host=0,
                keepalive_timeout=self.settings.keepalive_timeout,
                enable_cleanup_closed=False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, raise_for_status=False, trust_env=False
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def started(self) -> bool:
        return self._session is not None and not self._session.closed

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise UpstreamUnavailable("the proxy is not started")
        return self._session

    async def send(self, req: UpstreamRequest) -> aiohttp.ClientResponse:
        """Send ``req``; the response's body is not read yet (the caller reads or streams it, then releases)."""
        try:
            return await self.session.request(req.method, req.url, data=req.body,
                                              headers=outgoing_headers(req.headers, req.url))
        except TRANSPORT_ERRORS as exc:
            if not isinstance(exc, TimeoutError):  # no answer at all: retryable (stages.backpressure)
                raise UpstreamUnreachable(f"could not reach the provider at {_host(req.url)} "
                                          f"({type(exc).__name__})") from None
            raise transport_error(exc, timeout=f"the provider at {_host(req.url)} did not answer in time",
                                  failure=f"could not reach the provider at {_host(req.url)}") from None

    async def read(self, resp: aiohttp.ClientResponse, ticket: Ticket | None = None) -> bytes:
        """The whole body of ``resp``, at most :attr:`UpstreamSettings.max_answer_bytes` (a larger answer is a
        502, its connection closed); its bytes are taken from ``ticket``. The connection returns to the pool."""
        limit = self.settings.max_answer_bytes
        complete = False
        try:
            declared = resp.content_length
            if declared is not None and declared > limit:
                raise _too_large(resp, limit)
            if ticket is not None:
                ticket.take(declared if declared is not None else 0, "the provider's answer")
            if declared is not None:
                body = await resp.read()
            else:
                parts: list[bytes] = []
                size = 0
                while chunk := await resp.content.readany():
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(resp, limit)
                    if ticket is not None:
                        ticket.take(len(chunk), "the provider's answer")
                    parts.append(chunk)
                body = b"".join(parts)
            complete = True
            return body
        except TRANSPORT_ERRORS as exc:
            raise _read_failed(resp, exc) from None
        finally:
            _done_with(resp, complete)

    async def read_error(self, resp: aiohttp.ClientResponse) -> bytes:
        """The first :data:`MAX_ERROR_BODY_BYTES` of an error answer (the rest is not read: the connection is
        closed when there was more)."""
        complete = False
        try:
            parts: list[bytes] = []
            size = 0
            while size < MAX_ERROR_BODY_BYTES and (chunk := await resp.content.read(MAX_ERROR_BODY_BYTES - size)):
                parts.append(chunk)
                size += len(chunk)
            complete = resp.content.at_eof()
            return b"".join(parts)
        except TRANSPORT_ERRORS as exc:
            raise _read_failed(resp, exc) from None
        finally:
            _done_with(resp, complete)

    async def post_form(self, url: str, data: Mapping[str, str], *, timeout: float) -> tuple[int, bytes]:
        """A form POST for side calls (token endpoints); implements the providers' ``HttpClient``."""
        try:
            async with self.session.post(
                url, data=dict(data), timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp:
                return resp.status, await resp.read()
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, timeout=f"the token endpoint at {_host(url)} did not answer in time",
                                  failure=f"could not reach the token endpoint at {_host(url)}") from None


def transport_error(exc: BaseException, *, timeout: str, failure: str) -> GatewayError:
    """The one mapping of a transport failure: a timeout is :class:`UpstreamTimeout` (504) with the message
    ``timeout``, any other aiohttp error :class:`UpstreamUnavailable` (502) with ``failure`` and the error's
    type (never its text: it may quote a URL)."""
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(timeout)
    return UpstreamUnavailable(f"{failure} ({type(exc).__name__})")


def stream_broken(exc: BaseException) -> GatewayError:
    """A provider stream that failed after its headers (read by the server's pump or the guardrails' buffer)."""
    return transport_error(exc, timeout="the provider stopped sending the stream",
                           failure="the provider's stream broke off")


def _too_large(resp: aiohttp.ClientResponse, limit: int) -> BadUpstreamResponse:
    return BadUpstreamResponse(f"the provider at {resp.url.host} answered with a body larger than {limit} bytes")


def _host(url: str) -> str:
    return urlsplit(url).netloc or "?"


def _read_failed(resp: aiohttp.ClientResponse, exc: BaseException) -> GatewayError:
    """The error for a transport failure while reading the body of ``resp``."""
    return transport_error(exc, timeout=f"the provider at {resp.url.host} stopped answering",
                           failure=f"the connection to the provider at {resp.url.host} failed")


def _done_with(resp: aiohttp.ClientResponse, complete: bool) -> None:
    """Return the connection of a body read to its end to the pool; close one read only in part."""
    if complete:
        resp.release()
    else:
        resp.close()
