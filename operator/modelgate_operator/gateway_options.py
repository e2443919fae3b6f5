"""``modelgate-operator run``'s ``--gateway-*`` flags (the chart's ``gateway`` values) -> :class:`GatewayDefaults`."""

from __future__ import annotations

import argparse
import json

from .gateway_defaults import GATEWAY_CLUSTER_ROLE, GatewayDefaults, GatewayIngress

_DEFAULTS = GatewayDefaults()


def add_gateway_arguments(run: argparse.ArgumentParser) -> None:
    group = run.add_argument_group("workspace gateway", "one gateway per namespace with ServingEndpoints "
                                   "(docs/workspace-gateway.md)")  # fmt: skip
    group.add_argument("--gateway", choices=("true", "false"), default="true",
                       help="render the namespaces' workspace gateways (default true)")  # fmt: skip
    group.add_argument("--gateway-cluster-role", default=GATEWAY_CLUSTER_ROLE, metavar="NAME",
                       help="the ClusterRole bound to each gateway's ServiceAccount (the operator needs bind on it)")
    group.add_argument("--gateway-replicas", type=int, default=_DEFAULTS.replicas, metavar="N")
    group.add_argument("--gateway-resources", metavar="JSON", default=None,
                       help="the gateway container's resources (default: requests 100m/192Mi, limit 512Mi)")
    group.add_argument("--gateway-ingress", metavar="JSON", default=None,
                       help='e.g. {"enabled":true,"className":"nginx","host":"{namespace}.ai.example.com",'
                            '"tlsSecret":"wildcard-tls","annotations":{}}')  # fmt: skip
    group.add_argument("--gateway-refuse-gitops", action="store_true",
                       help="the gateways refuse updates and deletes of GitOps-managed endpoints")


def gateway_defaults(args: argparse.Namespace) -> GatewayDefaults:
    """Raises ValueError (pydantic's ValidationError, json's JSONDecodeError) for an unusable value."""
    if args.gateway_replicas < 1:
        raise ValueError("--gateway-replicas must be at least 1")
    resources = json.loads(args.gateway_resources) if args.gateway_resources else _DEFAULTS.resources
    if not isinstance(resources, dict):
        raise ValueError("--gateway-resources must be a JSON object")
    ingress = GatewayIngress.model_validate_json(args.gateway_ingress) if args.gateway_ingress else GatewayIngress()
    return GatewayDefaults(enabled=args.gateway == "true", cluster_role=args.gateway_cluster_role,
                           replicas=args.gateway_replicas, resources=resources, ingress=ingress,
                           refuse_gitops=args.gateway_refuse_gitops)  # fmt: skip
