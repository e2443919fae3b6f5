"""The one explicit request pipeline.

A request becomes an :class:`Exchange` and passes through a list of :class:`Stage` s, each of which may act
before and after the rest of the chain (``await call_next(ex)``); the last link performs the provider call.
Every AI Gateway layer is one stage module, added by :func:`stages_for` only when the endpoint's ``aiGateway``
(or a process-wide option) asks for it, so an endpoint without ``aiGateway`` runs routing and invoke only:

    usage records -> payload logging -> caller identity -> rate limits -> guardrails -> routing -> fallbacks
        -> invoke

- :mod:`.stages.usage` (``usageTrackingConfig.enabled``) and :mod:`.stages.payload_log`
  (``inferenceTableConfig.enabled``) come first so that every answer, refusals included, gets its record; they
  act after the response through :meth:`Exchange.on_finish`.
- :mod:`.stages.identity` names the caller (:class:`~modelgate_proxy.identity.Principal`) from trusted headers.
- :mod:`.stages.rate_limits` (``rateLimits``) admits or refuses (429) and charges tokens when the answer ends.
- :mod:`.stages.guardrails` (``guardrails``) checks and masks the request, then the answer (a stream is buffered
  when output guardrails are on).
- :mod:`.stages.routing` (traffic split), :mod:`.stages.fallbacks` (``fallbackConfig.enabled``), then
  :mod:`.stages.invoke`.

What happens after the pipeline returned (the answer sent, a stream pumped to its end, or an error answered) is
reported to the callbacks registered with :meth:`Exchange.on_finish`, as one :class:`Outcome`; the server calls
them (a stream's answer is aggregated for them by :mod:`.aggregate`). Callbacks are synchronous and must not
block: records go to a queue (:mod:`.records`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import aiohttp

from .json_types import JSON
from .providers.base import CallContext, StreamDecoder
from .spec import Task

if TYPE_CHECKING:
    from .aigateway import GatewayServices
    from .errors import GatewayError
    from .identity import Principal
    from .runtime import EndpointRuntime, EntityRuntime
    from .usage_tokens import TokenUsage

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
            self.request_id = uuid.uuid4().hex
            self.add_header(b"x-request-id", self.request_id.encode())
        return self.request_id

    def finish(self, outcome: Outcome) -> None:
        """Run the finishers; one that fails is logged and does not stop the others."""
        for finisher in self.finishers or ():
            try:
                finisher(self, outcome)
            except Exception:
                log.exception("endpoint %r: a post-response step failed", self.endpoint.name)


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


@dataclass(slots=True)
class BufferedStream:
    """A stream read to its end before anything was sent (output guardrails); the server replays its chunks."""

    entity: EntityRuntime
    chunks: list[JSON]


Result = Completed | Streaming | BufferedStream
Next = Callable[[Exchange], Awaitable[Result]]


class Stage(Protocol):
    """One layer of the pipeline."""

    async def __call__(self, ex: Exchange, call_next: Next) -> Result: ...


class Pipeline:
    """Stages bound once per endpoint, so a request pays one closure call per stage."""

    __slots__ = ("run", "stages")

    def __init__(self, stages: Sequence[Stage], terminal: Next) -> None:
        self.stages = tuple(stages)
        chain = terminal
        for stage in reversed(self.stages):
            chain = _link(stage, chain)
        self.run: Next = chain


def _link(stage: Stage, call_next: Next) -> Next:
    async def run(ex: Exchange) -> Result:
        return await stage(ex, call_next)

    return run


def stages_for(endpoint: EndpointRuntime, services: GatewayServices | None = None) -> list[Stage]:
    """The stages of an endpoint, in order, from its spec (and the process-wide AI Gateway options)."""
    from .stages.fallbacks import Fallbacks
    from .stages.routing import Routing

    stages: list[Stage] = []
    gateway = endpoint.spec.ai_gateway
    if services is not None:
        from .aigateway import gateway_stages

        stages.extend(gateway_stages(endpoint, services))
    stages.append(Routing())
    if gateway is not None and gateway.fallback_config is not None and gateway.fallback_config.enabled:
        stages.append(Fallbacks())
    return stages
