"""``spec.proxy.autoscaling`` and ``spec.proxy.disruptionBudget``: a HorizontalPodAutoscaler (autoscaling/v2) and
a PodDisruptionBudget (policy/v1) for the endpoint's proxy Deployment, rendered and owned by the operator."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from .rules import Rule, has
from .spec_model import SpecModel

METRIC_NAME_PATTERN = r"^[a-zA-Z_:][a-zA-Z0-9_:.\-/]*$"
AVERAGE_VALUE_PATTERN = r"^(\+)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE])?$"


class PodsMetric(SpecModel):
    """A per-pod custom metric (served by a metrics adapter such as prometheus-adapter), averaged over the pods."""

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=METRIC_NAME_PATTERN)]
    """The metric's name as the custom metrics API serves it, e.g. ``modelgate_requests_per_second``."""
    average_value: Annotated[str, Field(min_length=1, max_length=64, pattern=AVERAGE_VALUE_PATTERN)]
    """The target average per pod, a Kubernetes quantity (``10``, ``500m``)."""


class Autoscaling(SpecModel):
    """A HorizontalPodAutoscaler for the proxy: CPU utilisation, a per-pod custom metric, or both (the
    autoscaler takes the larger proposal). Without either, CPU at 80 %."""

    min_replicas: Annotated[int, Field(ge=1, le=100)] = 1
    """Fewest proxy pods."""
    max_replicas: Annotated[int, Field(ge=1, le=100)]
    """Most proxy pods."""
    target_cpu_utilization_percentage: Annotated[int, Field(ge=1, le=100)] | None = None
    """Average CPU use, in percent of the proxy container's CPU request."""
    pods_metric: PodsMetric | None = None
    """A custom per-pod metric to scale on."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",
            message="minReplicas must not be above maxReplicas",
            check=lambda o: o.min_replicas <= o.max_replicas,
            field_path=".minReplicas",
            reason="FieldValueInvalid",
        ),
    )

    @property
    def cpu_target(self) -> int | None:
        """The CPU target rendered: the one set, or 80 when no metric is set at all."""
        if self.target_cpu_utilization_percentage is None and self.pods_metric is None:
            return 80
        return self.target_cpu_utilization_percentage


class DisruptionBudget(SpecModel):
    """A PodDisruptionBudget for the proxy pods: exactly one of ``minAvailable`` or ``maxUnavailable``."""

    min_available: Annotated[int, Field(ge=0, le=100)] | None = None
    """Pods that must stay up during voluntary disruptions (node drains)."""
    max_unavailable: Annotated[int, Field(ge=0, le=100)] | None = None
    """Pods that may be down at once during voluntary disruptions."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="has(self.minAvailable) != has(self.maxUnavailable)",
            message="set exactly one of minAvailable and maxUnavailable",
            check=lambda o: has(o, "min_available") != has(o, "max_unavailable"),
            field_path=".minAvailable",
            reason="FieldValueInvalid",
        ),
    )
