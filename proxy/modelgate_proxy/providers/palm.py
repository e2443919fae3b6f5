"""The ``palm`` provider: Google retired the PaLM API, so every request is refused with a clear 4xx.

An endpoint that still names ``palm`` loads and reports its entity as not servable (the operator's condition);
the proxy answers 410 Gone with what to do instead, never a crash or a call to a dead API.
"""

from __future__ import annotations

from typing import ClassVar

from ..errors import ProviderRetired
from ..json_types import JSON
from ..spec import Task
from ..spec.capabilities import PROVIDER_TASKS, RETIRED_PROVIDERS
from .base import CallContext, Provider, StreamDecoder, UpstreamRequest

RETIRED_MESSAGE = RETIRED_PROVIDERS["palm"]


class PaLMProvider(Provider):
    name: ClassVar[str] = "palm"
    tasks: ClassVar[frozenset[Task]] = PROVIDER_TASKS["palm"]
    retired: ClassVar[bool] = True

    async def build_request(self, ctx: CallContext, payload: JSON) -> UpstreamRequest:
        raise ProviderRetired(RETIRED_MESSAGE)

    def parse_response(self, ctx: CallContext, payload: JSON, body: bytes) -> JSON:
        raise ProviderRetired(RETIRED_MESSAGE)

    def stream_decoder(self, ctx: CallContext, payload: JSON) -> StreamDecoder:
        raise ProviderRetired(RETIRED_MESSAGE)
