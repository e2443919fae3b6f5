"""What a request is while it passes the stages: the :class:`Exchange`, the endpoint and served entities it is
for (:class:`EndpointRuntime`, :class:`EntityRuntime`), the caller (:class:`Principal`), the pipeline's
results (:class:`Completed`, :class:`Streaming`), the :class:`Stage` protocol and the
:class:`Pipeline` that binds an endpoint's stages once.

A request becomes an :class:`Exchange` and passes through a list of :class:`Stage` s, each of which may act
before and after the rest of the chain (``await call_next(ex)``); the last link performs the provider call.
Which stages an endpoint has, and in which order, is decided in one place:
:mod:`modelgate_proxy.endpoints.stage_list`. Stages depend on this module only (and on their own feature's
logic), never on each other.

What happens after the pipeline returned (the answer sent, a stream pumped to its end, or an error answered) is
reported to the callbacks registered with :meth:`Exchange.on_finish`, as one :class:`Outcome`; the server calls
them (a stream's answer is aggregated for them by :mod:`modelgate_proxy.aggregate`). Callbacks are synchronous
and must not block: records go to a queue (:mod:`modelgate_proxy.stages.records.sinks`).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import aiohttp

from .errors import GatewayError
from .json_types import JSON
from .metrics import EntityMetrics
from .providers.base import CallContext, Provider, StreamDecoder
from .spec import ServedEntity, ServingEndpointSpec, Task
from .usage_tokens import TokenUsage

if TYPE_CHECKING:
    from .budget import Ticket

Api = Literal["databricks", "openai"]
"""Which query API the caller used: it decides the error shape."""

log = logging.getLogger("modelgate.proxy")

Finisher = Callable[["Exchange", "Outcome"], None]
"""Called once when the request's answer is over (see :class:`Outcome`)."""

_NO_HEADERS: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(slots=True)
class Exchange:
    """One request on its way through the pipeline."""

    endpoint: EndpointRuntime
    api: Api
    task: Task
    payload: JSON
    """The OpenAI-format body without ``model`` (``extra_params`` already merged in)."""
    stream: bool
    arrived: float
    """``time.perf_counter()`` when the request arrived."""
    order: tuple[int, ...] = ()
    """Served-entity indexes in the order to try them (set by routing)."""
    entity: EntityRuntime | None = None
    """The served entity the next provider call goes to."""
    upstream_seconds: float = 0.0
    """Time spent waiting for providers (headers, and the body when not streaming)."""
    attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    """Room for later stages."""
    headers: Sequence[tuple[bytes, bytes]] = _NO_HEADERS
    """The request's headers as ASGI gives them (lower-case names); read by the identity stage."""
    client_request_id: str | None = None
    """Databricks ``client_request_id`` from the body (removed from the payload)."""
    usage_context: dict[str, Any] | None = None
    """Databricks ``usage_context`` from the body (removed from the payload)."""
    principal: Principal | None = None
    """Who is calling (set by the identity stage; ``None`` reads as anonymous)."""
    request_id: str | None = None
    """The proxy's id for this request (set by the usage and payload stages; returned as ``x-request-id``)."""
    response_headers: list[tuple[bytes, bytes]] | None = None
    """Headers stages add to the answer, successful or not."""
    finishers: list[Finisher] | None = None
    answer: JSON | None = None
    """The provider's answer when the caller got an error instead (an output guardrail blocked it)."""
    ticket: Ticket | None = None
    """The request's share of the in-flight byte budget; provider answers read for it are taken from it."""
    deadline: float = float("inf")
    """``time.perf_counter()`` by which the answer must be over (the endpoint's request timeout)."""
    guardrail_decisions: list[GuardrailDecision] | None = None
    """What the guardrails decided (written to the payload record; a trace span can read it)."""

    def on_finish(self, finisher: Finisher) -> None:
        """Call ``finisher`` once the answer is over; a stream is then aggregated for it."""
        if self.finishers is None:
            self.finishers = [finisher]
        else:
            self.finishers.append(finisher)

    def add_header(self, name: bytes, value: bytes) -> None:
        if self.response_headers is None:
            self.response_headers = [(name, value)]
        else:
            self.response_headers.append((name, value))

    def ensure_request_id(self) -> str:
        """The proxy's id for this request, made on first use and returned to the caller as ``x-request-id``."""
        if self.request_id is None:
            self.request_id = new_request_id()
            self.add_header(b"x-request-id", self.request_id.encode())
        return self.request_id

    def finish(self, outcome: Outcome) -> None:
        """Run the finishers; one that fails is logged and does not stop the others."""
        for finisher in self.finishers or ():
            try:
                finisher(self, outcome)
            except Exception:
                log.exception("endpoint %r: a post-response step failed", self.endpoint.name)


def new_request_id() -> str:
    """A random (version 4) UUID as 32 hex digits, what ``uuid.uuid4().hex`` gives, for a third of its CPU."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # variant RFC 4122
    return raw.hex()


@dataclass(frozen=True, slots=True)
class GuardrailDecision:
    """One guardrail's decision on one direction of a request; never the text or the values found."""

    direction: Literal["input", "output"]
    guardrail: str
    """``invalid_keywords``, ``pii``, ``safety`` or ``valid_topics``."""
    decision: Literal["blocked", "masked", "unavailable", "logged"]
    """Refused; values masked; refused because no verdict could be had (``FAIL_CLOSED``); no verdict, let
    through (``LOG_ONLY``)."""
    detail: tuple[str, ...] = ()
    """The PII kinds or safety category codes found."""


StreamEnd = Literal["complete", "failed", "cancelled"]


@dataclass(slots=True)
class Outcome:
    """How a request ended, for :meth:`Exchange.on_finish` callbacks."""

    status: int
    """The HTTP status the caller got."""
    latency: float
    """Seconds from arrival to the end of the answer."""
    body: JSON | None
    """The answer as the caller got it (a stream: aggregated into one OpenAI answer); ``None`` for an error."""
    error: GatewayError | None = None
    """The error answered (or that ended a stream)."""
    stream: StreamEnd | None = None
    """For streams: ran to ``[DONE]``, ended by an error event, or cut short by the caller."""
    usage: TokenUsage | None = None
    """Tokens of the answer (``None`` when no provider answer exists), estimated where the provider gave none."""
    body_json: bytes | None = None
    """``body`` as the caller got it, JSON-encoded (a whole answer: the bytes sent), so a record reuses it."""


@dataclass(slots=True)
class Completed:
    """A whole OpenAI-format answer."""

    entity: EntityRuntime
    body: JSON


@dataclass(slots=True)
class Streaming:
    """A provider stream whose status was 2xx; the server pumps it to the caller and closes it."""

    entity: EntityRuntime
    response: aiohttp.ClientResponse
    decoder: StreamDecoder
    ctx: CallContext
    guard: StreamFilter | None = None
    """Output guardrails on the stream: every decoded batch of chunks passes through it before it is sent."""
    head: bytes = b""
    """Bytes already read from ``response`` (waiting for the first byte, :mod:`.stages.backpressure`)."""

    async def read(self) -> bytes:
        """The next bytes of the stream (``head`` first); ``b""`` at its end."""
        if self.head:
            data, self.head = self.head, b""
            return data
        return await self.response.content.readany()


class StreamFilter(Protocol):
    """Rewrites a stream's chunks on their way to the caller (holding some back), or raises a
    :class:`~modelgate_proxy.errors.GatewayError` that ends the stream with an error event."""

    async def feed(self, chunks: list[JSON]) -> list[JSON]: ...

    async def close(self, chunks: list[JSON]) -> list[JSON]:
        """The last chunks (the decoder's tail) and whatever was held back."""
        ...


Result = Completed | Streaming
Next = Callable[[Exchange], Awaitable[Result]]


class Stage(Protocol):
    """One layer of the pipeline: usually an ``async def``; a stage that only prepares the exchange (registers a
    finisher, say) may be a plain function returning ``call_next(ex)``, which keeps it out of the request's chain of
    coroutines (none to create, none to pass through at every resumption of the provider call)."""

    def __call__(self, ex: Exchange, call_next: Next) -> Awaitable[Result]: ...


class Pipeline:
    """Stages bound once per endpoint: each link is ``functools.partial(stage.__call__, call_next=rest)``, so a
    request pays one coroutine per stage (a wrapping ``async def`` would add a second, on every resumption of
    the chain too)."""

    __slots__ = ("run", "stages")

    def __init__(self, stages: Sequence[Stage], terminal: Next) -> None:
        self.stages = tuple(stages)
        chain = terminal
        for stage in reversed(self.stages):
            chain = _link(stage, chain)
        self.run: Next = chain


def _link(stage: Stage, call_next: Next) -> Next:
    return functools.partial(stage.__call__, call_next=call_next)


PrincipalKind = Literal["user", "service_principal", "anonymous"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling (read from trusted headers by :mod:`modelgate_proxy.stages.identity`)."""

    kind: PrincipalKind
    name: str
    groups: tuple[str, ...] = ()


ANONYMOUS = Principal("anonymous", "anonymous")


class EntityRuntime:
    """One served entity: its adapter (or why it has none) and its metric children."""

    __slots__ = ("_error", "_provider", "index", "metrics", "name", "name_header", "spec")

    def __init__(self, index: int, spec: ServedEntity, provider: Provider | None, error: GatewayError | None,
                 metrics: EntityMetrics) -> None:
        self.index, self.spec, self.name = index, spec, spec.effective_name
        self._provider, self._error = provider, error
        self.metrics = metrics
        self.name_header = self.name.encode()

    def provider(self) -> Provider:
        if self._provider is None:
            assert self._error is not None
            raise self._error
        return self._provider

    @property
    def problem(self) -> str | None:
        return self._error.message if self._error is not None else None


@dataclass(slots=True)
class EndpointRuntime:
    """One served endpoint, computed once at start-up (:mod:`modelgate_proxy.endpoints.build`)."""

    name: str
    spec: ServingEndpointSpec
    task: Task
    entities: tuple[EntityRuntime, ...]
    pipeline: Pipeline
    references: tuple[tuple[str, str], ...]
    """(field path, reference) of every credential the endpoint uses, for /readyz."""
    namespace: str = "default"
    """The endpoint's namespace (where its query permission is checked)."""
