"""Pure rendering of the proxy's scaling children, from ``spec.proxy``: a ``HorizontalPodAutoscaler``
(autoscaling/v2) ``<child>`` scaling the Deployment ``<child>`` on CPU utilisation and/or a per-pod custom metric,
and a ``PodDisruptionBudget`` (policy/v1) ``<child>`` over the proxy pods. Labelled and owned like the other
children (garbage-collected with the endpoint); when the spec drops one, the operator deletes it
(:meth:`~.children.ChildWriter.apply_all`).

Rate limits and replicas: with the Redis counters (the operator's ``--redis-secret``) every replica shares one
count, so the replica count divides nothing. With the in-process counters each replica counts for itself:
:func:`per_replica_note` is the message the operator puts in ``ConfigValid`` (reason ``LimitsPerReplica``).
"""

from __future__ import annotations

from typing import Any

from modelgate_proxy.spec import ServingEndpointSpec

Manifest = dict[str, Any]

SCALING_KINDS = ("HorizontalPodAutoscaler", "PodDisruptionBudget")
"""Children that exist only when the spec asks for them."""


def render_autoscaler(name: str, metadata: Manifest, spec: ServingEndpointSpec) -> Manifest | None:
    """The HPA of ``spec.proxy.autoscaling`` for the Deployment ``name``; ``None`` without one."""
    scaling = spec.proxy.autoscaling if spec.proxy is not None else None
    if scaling is None:
        return None
    metrics: list[Manifest] = []
    cpu = scaling.cpu_target
    if cpu is not None:
        metrics.append({"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}})
    if scaling.pods_metric is not None:
        metrics.append({"type": "Pods", "pods": {
            "metric": {"name": scaling.pods_metric.name},
            "target": {"type": "AverageValue", "averageValue": scaling.pods_metric.average_value}}})
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": metrics,
        },
    }


def render_disruption_budget(metadata: Manifest, selector: dict[str, str], spec: ServingEndpointSpec) -> Manifest | None:
    """The PDB of ``spec.proxy.disruptionBudget`` over the pods ``selector`` picks; ``None`` without one."""
    budget = spec.proxy.disruption_budget if spec.proxy is not None else None
    if budget is None:
        return None
    body: Manifest = {"selector": {"matchLabels": selector}}
    if budget.min_available is not None:
        body["minAvailable"] = budget.min_available
    else:
        body["maxUnavailable"] = budget.max_unavailable
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": metadata, "spec": body}


def most_replicas(spec: ServingEndpointSpec, default: int) -> int:
    """The most proxy pods the spec allows at once (the HPA's maximum, else the replica count)."""
    proxy = spec.proxy
    if proxy is not None and proxy.autoscaling is not None:
        return proxy.autoscaling.max_replicas
    return proxy.replicas if proxy is not None and proxy.replicas is not None else default


def per_replica_note(spec: ServingEndpointSpec, default_replicas: int, shared_counters: bool) -> str | None:
    """Why the rate limits hold per replica, or ``None`` when they hold for the endpoint as a whole."""
    gateway = spec.ai_gateway
    if shared_counters or gateway is None or not gateway.rate_limits:
        return None
    most = most_replicas(spec, default_replicas)
    if most <= 1:
        return None
    proxy = spec.proxy
    if proxy is not None and proxy.autoscaling is not None:
        return (f"the rate limits are counted per replica (in-process counters) and the autoscaler may run up to "
                f"{most} replicas: each enforces the full limits, so the endpoint may admit up to {most} times "
                "them; configure the operator's Redis (--redis-secret) for limits shared by every replica")
    return (f"the rate limits are counted per replica (in-process counters): each of the {most} replicas enforces "
            f"ceil(limit / {most}); configure the operator's Redis (--redis-secret) for limits shared by every "
            "replica")
