"""What the routes share: endpoints, the upstream client, metrics, credentials and limits."""

from __future__ import annotations

from dataclasses import dataclass

from ..budget import ByteBudget
from ..credentials import FileCredentials
from ..endpoints.services import GatewayServices
from ..exchange import EndpointRuntime
from ..metrics import Metrics
from ..upstream import Upstream


@dataclass(slots=True)
class GatewayState:
    endpoints: dict[str, EndpointRuntime]
    upstream: Upstream
    metrics: Metrics
    credentials: FileCredentials
    max_body_bytes: int
    services: GatewayServices | None = None
    budget: ByteBudget | None = None
    """The in-flight byte budget of the process (none: unbounded)."""
    request_timeout: float = 600.0
    """Seconds a query request may take in total, unless its endpoint says otherwise."""
