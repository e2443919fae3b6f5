"""The provider interface: one adapter per provider, behind this one base class.

An adapter translates an OpenAI-format request into the provider's wire format (``build_request``), and the
provider's answer back into the OpenAI format: a whole response (``parse_response``), a stream
(``stream_decoder``) and an error (``parse_error``). Translation is pure and synchronous except
``build_request``, which may await a token (Entra ID, Google OAuth) or sign (SigV4).

The proxy core owns the HTTP call, timeouts, streaming to the caller, metrics and error shapes; an adapter
never performs the model call itself.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import orjson

from ..errors import BadUpstreamResponse, GatewayError, UpstreamError
from ..json_types import JSON
from ..spec import ExternalModel, Task

E = TypeVar("E", bound=GatewayError)
T = TypeVar("T")


class Credentials(Protocol):
    """Resolves a credential at call time, so a rotated Secret is used by the next request."""

    def resolve(self, reference: str | None, plaintext: str | None, *, field: str) -> str:
        """The value of a ``{{secrets/name/key}}`` reference or the plaintext; ``field`` names it in errors."""
        ...


class HttpClient(Protocol):
    """What an adapter may use for side calls (token endpoints): a small JSON POST."""

    async def post_form(self, url: str, data: Mapping[str, str], *, timeout: float) -> tuple[int, bytes]: ...


@dataclass(slots=True)
class UpstreamRequest:
    """The provider call the core performs."""

    url: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class CallContext:
    """What an adapter knows about the call besides the payload."""

    endpoint: str
    """The ServingEndpoint's name."""
    entity: str
    """The served entity's (effective) name."""
    task: Task
    stream: bool
    request_id: str = ""
    include_usage: bool = True
    """Streaming only: send usage in a last chunk (OpenAI's ``stream_options.include_usage``)."""
    extra: dict[str, Any] = field(default_factory=dict)


class StreamDecoder(ABC):
    """Turns the provider's streamed bytes into OpenAI-format chunks (``chat.completion.chunk`` /
    ``text_completion``). ``feed`` may raise :class:`UpstreamError` for an error event in the stream; the
    chunks decoded from the same bytes before that event travel with the error (:func:`chunks_before`), so
    the caller still gets them ahead of the error. Decoders translate their events through
    :func:`decode_each`, which does that."""

    @abstractmethod
    def feed(self, data: bytes) -> list[JSON]: ...

    def close(self) -> list[JSON]:
        """Called when the upstream body ends; returns any final chunks (e.g. the usage chunk)."""
        return []


class Provider(ABC):
    """Base class of every provider adapter."""

    name: ClassVar[str]
    """The ``provider`` value in the spec, e.g. ``anthropic``."""
    tasks: ClassVar[frozenset[Task]]
    """Tasks this adapter serves; others are refused with a 400 before any call."""
    stream_media_types: ClassVar[tuple[str, ...]] = ("text/event-stream",)
    """The content types of the provider's streamed answers; a 2xx of another type (a whole JSON answer) to a
    stream request is a 502 before anything is sent to the caller."""

    def __init__(self, model: ExternalModel, credentials: Credentials, http: HttpClient) -> None:
        self.model = model
        self.credentials = credentials
        self.http = http

    @abstractmethod
    async def build_request(self, ctx: CallContext, payload: JSON) -> UpstreamRequest:
        """``payload`` is the OpenAI-format body without ``model`` (chat: ``messages``; completions: ``prompt``;
        embeddings: ``input``) with every other parameter the caller sent, ``stream`` included."""

    @abstractmethod
    def parse_response(self, ctx: CallContext, payload: JSON, body: bytes) -> JSON:
        """The OpenAI-format response for a 2xx provider answer; :class:`BadUpstreamResponse` if unreadable."""

    @abstractmethod
    def stream_decoder(self, ctx: CallContext, payload: JSON) -> StreamDecoder: ...

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """The caller-facing error for a non-2xx provider answer. The default reads the common shapes
        (``{"error": {"message"}}``, ``{"message"}``, ``{"error": "..."}``) and keeps ``retry-after``."""
        message = error_message_from_body(body) or f"the provider answered HTTP {status}"
        return UpstreamError(f"{self.name} error: {message}", status=status, headers=retry_headers(headers))


_RETRY_VALUE = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,6})?|[A-Za-z]{3}, [0-9]{2} [A-Za-z]{3} [0-9]{4} [0-9:]{8} GMT")


def retry_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The provider's ``retry-after`` / ``retry-after-ms`` headers worth relaying: a number of seconds (or
    milliseconds) or an HTTP date. Anything else (text that is not ASCII, bytes that are not text) is dropped."""
    keep: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in ("retry-after", "retry-after-ms") and isinstance(value, str) \
                and _RETRY_VALUE.fullmatch(value.strip()):
            keep[name] = value.strip()
    return keep


def chunks_before(err: BaseException) -> list[JSON]:
    """The chunks a stream decoder produced, from the bytes it was fed last, before it met the error ``err``
    (an error event, a malformed event); empty for any other error. They precede the error in the stream."""
    return err.chunks_before if isinstance(err, GatewayError) else []


def with_chunks_before(err: E, chunks: list[JSON]) -> E:
    """``err`` carrying ``chunks`` as its :attr:`~..errors.GatewayError.chunks_before` (replacing any)."""
    err.chunks_before = chunks
    return err


def decode_each(events: Iterable[T], translate: Callable[[T], list[JSON]]) -> list[JSON]:
    """The chunks of ``events`` (any iterable, a generator included), translated one at a time. When reading or
    translating an event raises a :class:`GatewayError`, the chunks of the events before it are attached to the
    error (:func:`chunks_before`) rather than lost with the list being built."""
    out: list[JSON] = []
    try:
        for event in events:
            out.extend(translate(event))
    except GatewayError as err:
        with_chunks_before(err, out + chunks_before(err))
        raise
    return out


def loads(body: bytes, provider: str) -> Any:
    """Parse a provider's JSON body or raise :class:`BadUpstreamResponse` (502)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadUpstreamResponse(f"{provider} returned a response that is not JSON") from None


def event_object(data: str, provider: str) -> JSON:
    """Parse one stream event's data as a JSON object or raise :class:`BadUpstreamResponse` (502)."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise BadUpstreamResponse(f"{provider} sent a stream event that is not JSON") from None
    if not isinstance(event, dict):
        raise BadUpstreamResponse(f"{provider} sent a stream event that is not a JSON object")
    return event


def error_message_from_body(body: bytes) -> str | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", errors="replace").strip()
        return text[:500] or None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
        for key in ("message", "detail", "Message"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return None
