"""The AI Gateway layers' process-wide options (from the command line) and the services the stages of one app
share (record sinks, the caller-identity reader, metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..metrics import Metrics
from ..stages.identity.headers import IdentityReader, IdentitySettings
from ..stages.records.sinks import STDOUT, RecordSinks


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    rate_limit_replicas: int = 1
    """Proxy replicas sharing the endpoint's traffic: each enforces ``ceil(limit / replicas)``."""
    usage_log: str = STDOUT
    """Where usage records go: ``-`` (standard output) or a file."""
    payload_log: str = STDOUT
    """Where payload records go: ``-`` (standard output) or a file."""
    record_queue: int = 10_000
    """Records waiting to be written, per destination, before new ones are dropped."""


class GatewayServices:
    """What the AI Gateway stages of one app share."""

    def __init__(self, settings: GatewaySettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sinks = RecordSinks(max_queue=settings.record_queue, on_drop=metrics.record_dropped)
        self.identity = IdentityReader(settings.identity)
