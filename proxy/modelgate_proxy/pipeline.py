"""The one explicit request pipeline.

A request becomes an :class:`Exchange` and passes through a list of :class:`Stage` s, each of which may act
before and after the rest of the chain (``await call_next(ex)``); the last link performs the provider call.
Every AI Gateway layer is one stage module added to :func:`stages_for`:

    caller authentication -> rate limits -> guardrails (input) -> routing -> fallbacks -> invoke
                              usage records / payload logging / guardrails (output) wrap the result

Today's stages: :mod:`.stages.routing` (traffic split) and :mod:`.stages.fallbacks` (when
``aiGateway.fallbackConfig.enabled``), then :mod:`.stages.invoke`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import aiohttp

from .providers.base import JSON, CallContext, StreamDecoder
from .spec import Task

if TYPE_CHECKING:
    from .runtime import EndpointRuntime, EntityRuntime

Api = Literal["databricks", "openai"]
"""Which query API the caller used: it decides the error shape."""


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
    """Room for later stages (caller identity, rate-limit keys, ...)."""


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


Result = Completed | Streaming
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


def stages_for(endpoint: EndpointRuntime) -> list[Stage]:
    """The stages of an endpoint, in order, from its spec."""
    from .stages.fallbacks import Fallbacks
    from .stages.routing import Routing

    stages: list[Stage] = [Routing()]
    gateway = endpoint.spec.ai_gateway
    if gateway is not None and gateway.fallback_config is not None and gateway.fallback_config.enabled:
        stages.append(Fallbacks())
    return stages
