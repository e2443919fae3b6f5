"""``modelgate serve``'s options for the Databricks management API (docs/management-api.md): on with
``--management-namespace NS``; the API server from the pod's environment (``KUBERNETES_SERVICE_HOST``, the
ServiceAccount token and CA files) unless ``--management-server`` and the files are given (tests, standalone)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from ..server.management import ManagementSettings
from ..spec.secrets import SECRET_NAME_PATTERN
from ..stages.identity.kubeapi import SA_DIR, KubeApiSettings
from .manifests import ConfigError

_NAMESPACE = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"


def add_management_arguments(serve: argparse.ArgumentParser) -> None:
    group = serve.add_argument_group(
        "management API", "the Databricks serving-endpoints API on ServingEndpoint resources (needs --auth-config)")
    group.add_argument("--management-namespace", default=None, metavar="NS",
                       help="serve create/update/delete/get/list of the ServingEndpoints of NS (default: off)")
    group.add_argument("--management-server", default=None, metavar="URL",
                       help="the Kubernetes API server (default: KUBERNETES_SERVICE_HOST/PORT, in a pod)")
    group.add_argument("--management-token-file", default=str(SA_DIR / "token"), metavar="FILE",
                       help="the gateway's ServiceAccount token (re-read as it rotates)")
    group.add_argument("--management-ca-file", default=str(SA_DIR / "ca.crt"), metavar="FILE",
                       help="the API server's CA certificate")
    group.add_argument("--management-refuse-gitops", action="store_true",
                       help="refuse updates and deletes of endpoints carrying a GitOps tracking label or annotation "
                            "(Argo CD, Flux, serving.modelgate.io/managed-by-gitops)")


def management_arguments(args: argparse.Namespace) -> dict[str, Any]:
    return {"management_namespace": args.management_namespace, "management_server": args.management_server,
            "management_token_file": args.management_token_file, "management_ca_file": args.management_ca_file,
            "management_refuse_gitops": args.management_refuse_gitops}


def management_settings(settings: dict[str, Any]) -> ManagementSettings | None:
    namespace = settings.get("management_namespace")
    if namespace is None:
        return None
    if not re.fullmatch(_NAMESPACE, namespace) or not re.fullmatch(SECRET_NAME_PATTERN, namespace):
        raise ConfigError(f"--management-namespace {namespace!r}: not a Kubernetes namespace name")
    kube = KubeApiSettings(server=settings.get("management_server"),
                           token_file=Path(settings.get("management_token_file") or SA_DIR / "token"),
                           ca_file=Path(settings.get("management_ca_file") or SA_DIR / "ca.crt"))
    return ManagementSettings(namespace=namespace, kube=kube,
                              refuse_gitops=bool(settings.get("management_refuse_gitops")))
