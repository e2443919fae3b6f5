"""What the operator renders the workspace gateway with (docs/workspace-gateway.md): the chart's ``gateway``
values, given as ``modelgate-operator run --gateway-*`` flags. No I/O; imported by :mod:`.render` without a cycle."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

GATEWAY_CLUSTER_ROLE = "modelgate-gateway"
"""The ClusterRole the gateway's ServiceAccount is bound to in its namespace (the chart ships it)."""


class GatewayIngress(BaseModel):
    """``--gateway-ingress`` (JSON; the chart's ``gateway.ingress``). ``host`` may hold ``{namespace}``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    enabled: bool = False
    class_name: str | None = Field(default=None, alias="className", max_length=253)
    host: str = Field(default="", max_length=253)
    tls_secret: str | None = Field(default=None, alias="tlsSecret", max_length=253)
    """A Secret of each gateway namespace with the certificate (``tls`` on); None or empty: plain HTTP."""
    annotations: dict[str, str] = Field(default_factory=dict, max_length=64)


@dataclass(frozen=True, slots=True)
class GatewayDefaults:
    """One gateway per namespace with at least one ServingEndpoint (``enabled``), rendered with these."""

    enabled: bool = True
    cluster_role: str = GATEWAY_CLUSTER_ROLE
    replicas: int = 1
    resources: dict[str, dict[str, str | int]] = field(
        default_factory=lambda: {"requests": {"cpu": "100m", "memory": "192Mi"}, "limits": {"memory": "512Mi"}}
    )
    ingress: GatewayIngress = field(default_factory=GatewayIngress)
    refuse_gitops: bool = False
    """``--management-refuse-gitops``: updates and deletes of GitOps-managed endpoints answer INVALID_STATE."""
