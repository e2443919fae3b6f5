"""``modelgate-operator``: run the operator, or print the CRD it serves.

    modelgate-operator run --namespace team-a [--namespace team-b] [--peering modelgate] [--liveness URL]
    modelgate-operator run --all-namespaces --peering modelgate --liveness http://0.0.0.0:8081/healthz
    modelgate-operator crdgen [--stdout]      # prints the ServingEndpoint CRD (the repo's copies: `make crd`)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
from collections.abc import Sequence

import kopf

from modelgate_proxy.spec import OidcProvider
from modelgate_proxy.spec.gateway import GuardrailJudge

from . import crd
from .gateway_options import add_gateway_arguments, gateway_defaults
from .handlers import register
from .proxy_telemetry import parse as parse_telemetry
from .reconcile import CONCURRENCY
from .render import ProxyDefaults
from .render_auth import REVIEWS_CLUSTER_ROLE, AuthDefaults
from .secretcache import REFERENCEABLE_LABEL
from .settings import RuntimeOptions, configure_logging, operator_settings

_DEFAULTS = ProxyDefaults()
_AUTH = AuthDefaults()


def _run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run the operator")
    scope = run.add_mutually_exclusive_group(required=True)
    scope.add_argument("-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    run.add_argument("--peering", metavar="NAME", help="(Cluster)KopfPeering object; without it: standalone")
    run.add_argument("--liveness", metavar="URL", help="serve a liveness probe, e.g. http://0.0.0.0:8081/healthz")
    run.add_argument(
        "--proxy-image", default=os.environ.get("MODELGATE_PROXY_IMAGE", _DEFAULTS.image), help="proxy image"
    )
    run.add_argument(
        "--proxy-image-pull-policy", choices=("Always", "IfNotPresent", "Never"),
        default=os.environ.get("MODELGATE_PROXY_IMAGE_PULL_POLICY", _DEFAULTS.image_pull_policy),
    )  # fmt: skip
    run.add_argument(
        "--proxy-resources", metavar="JSON", default=os.environ.get("MODELGATE_PROXY_RESOURCES"),
        help='default proxy resources, e.g. {"limits":{"memory":"512Mi"}}',
    )  # fmt: skip
    run.add_argument(
        "--priority", type=int, default=None,
        help="peering priority of this replica (default: random, so replicas never tie)",
    )  # fmt: skip
    run.add_argument(
        "--proxy-telemetry", metavar="JSON", default=os.environ.get("MODELGATE_PROXY_TELEMETRY"),
        help='Delta tables, traces, service account of every proxy, e.g. {"tables":{"root":"s3://b/lake"}}',
    )  # fmt: skip
    run.add_argument("--proxy-replicas", type=int, default=_DEFAULTS.replicas, help="default proxy replicas")
    run.add_argument(
        "--cluster-domain", default=os.environ.get("MODELGATE_CLUSTER_DOMAIN", "cluster.local"), help="for endpointUrl"
    )
    run.add_argument(
        "--resync-interval", type=float, default=300.0, metavar="SECONDS",
        help="reconcile every endpoint this often as a safety net (0: never; default 300)",
    )  # fmt: skip
    run.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, metavar="N",
        help=f"reconciles in flight at once; the rest wait in arrival order (default {CONCURRENCY})",
    )  # fmt: skip
    run.add_argument("--server-timeout", type=int, default=300, help="watch timeout asked of the API server")
    run.add_argument("--client-timeout", type=float, default=330.0, help="watch timeout enforced by the client")
    run.add_argument(
        "--require-secret-label", action="store_true",
        help=f"resolve only Secrets labelled {REFERENCEABLE_LABEL}=true (for clusters without admission policies)",
    )  # fmt: skip
    _auth_options(run)
    add_gateway_arguments(run)
    run.add_argument(
        "--redis-secret", default=os.environ.get("MODELGATE_REDIS_SECRET") or None, metavar="NAME",
        help="Secret (in each endpoint's namespace) with the rate-limit Redis: key url, and the password; "
             "proxies then share one count (default: in-process counters; env MODELGATE_REDIS_SECRET)",
    )  # fmt: skip
    run.add_argument(
        "--redis-password-key", default=os.environ.get("MODELGATE_REDIS_PASSWORD_KEY", "password"), metavar="KEY",
        help="the password's key in --redis-secret ('' for a Redis without a password; default password)",
    )  # fmt: skip
    run.add_argument(
        "--guardrail-judge", metavar="JSON", default=os.environ.get("MODELGATE_GUARDRAIL_JUDGE") or None,
        help='judge of safety/validTopics for endpoints naming none (docs/guardrails.md), e.g. {"endpoint":"guard"} '
             'or {"url":"http://guard:8000/v1","model":"llama-guard-3","apiKey":"{{secrets/guard/key}}"}',
    )  # fmt: skip
    run.add_argument("--log-format", choices=("json", "text"), default="json")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logs (kopf's included)")


def _auth_options(run: argparse.ArgumentParser) -> None:
    auth = run.add_argument_group("proxy authentication", "defaults for spec.proxy.authentication (the chart's "
                                  "proxy.authentication values); each endpoint may override them")  # fmt: skip
    env = os.environ.get
    auth.add_argument("--auth-mode", choices=("bearer", "trusted-header", "none"),
                      default=env("MODELGATE_AUTH_MODE", _AUTH.mode), help="default: bearer")
    auth.add_argument("--auth-audience", default=env("MODELGATE_AUTH_AUDIENCE", _AUTH.audience),
                      help=f"audience of accepted Kubernetes tokens (default {_AUTH.audience})")
    auth.add_argument("--auth-api-keys", choices=("true", "false"), default=env("MODELGATE_AUTH_API_KEYS", "true"),
                      help="accept the API-key Secrets of an endpoint's namespace (the proxy may then read that "
                      "namespace's Secrets)")
    auth.add_argument("--auth-oidc", metavar="JSON", default=env("MODELGATE_AUTH_OIDC") or None,
                      help='default OIDC issuer, e.g. {"issuer":"https://login.example.com","audience":"modelgate"}')
    for flag, var in (("--auth-user-header", "USER_HEADER"), ("--auth-groups-header", "GROUPS_HEADER"),
                      ("--auth-service-principal-header", "SERVICE_PRINCIPAL_HEADER")):
        auth.add_argument(flag, default=env(f"MODELGATE_AUTH_{var}") or None, help="for trusted-header mode")
    auth.add_argument("--proxy-api-server", metavar="URL", default=env("MODELGATE_PROXY_API_SERVER") or None,
                      help="the API server URL for the proxies (default: the pod's KUBERNETES_SERVICE_HOST/PORT)")
    auth.add_argument("--proxy-reviews-binding", default=env("MODELGATE_PROXY_REVIEWS_BINDING", REVIEWS_CLUSTER_ROLE),
                      help="the ClusterRoleBinding of ClusterRole modelgate-proxy-reviews whose subjects the "
                      "operator keeps ('' : do not manage it)")  # fmt: skip


def auth_defaults(args: argparse.Namespace) -> AuthDefaults:
    oidc = OidcProvider.model_validate(json.loads(args.auth_oidc)) if args.auth_oidc else None
    return AuthDefaults(
        mode=args.auth_mode, audience=args.auth_audience, api_keys=args.auth_api_keys == "true", oidc=oidc,
        user_header=args.auth_user_header, groups_header=args.auth_groups_header,
        service_principal_header=args.auth_service_principal_header,
        reviews_binding=args.proxy_reviews_binding or None,
        api_server=args.proxy_api_server,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    try:
        telemetry = parse_telemetry(args.proxy_telemetry)
    except ValueError as exc:  # pydantic's ValidationError: the field and what is wrong, never a traceback
        sys.stderr.write(f"modelgate-operator: --proxy-telemetry is not usable: {exc}\n")
        return 2
    try:
        gateway = gateway_defaults(args)
    except ValueError as exc:
        sys.stderr.write(f"modelgate-operator: the gateway flags are not usable: {exc}\n")
        return 2
    try:
        judge = GuardrailJudge.model_validate(json.loads(args.guardrail_judge)) if args.guardrail_judge else None
    except ValueError as exc:
        sys.stderr.write(f"modelgate-operator: --guardrail-judge is not usable: {exc}\n")
        return 2
    if judge is not None and judge.endpoint is None and judge.url is None:
        sys.stderr.write("modelgate-operator: --guardrail-judge names neither an endpoint nor a url\n")
        return 2
    configure_logging(json=args.log_format == "json", verbose=args.verbose, debug=args.verbose)
    options = RuntimeOptions(
        namespaces=tuple(args.namespace),
        clusterwide=bool(args.all_namespaces),
        peering=args.peering,
        liveness=args.liveness,
        server_timeout=args.server_timeout,
        client_timeout=args.client_timeout,
    )
    resources = json.loads(args.proxy_resources) if args.proxy_resources else _DEFAULTS.resources
    defaults = ProxyDefaults(
        image=args.proxy_image,
        image_pull_policy=args.proxy_image_pull_policy,
        replicas=args.proxy_replicas,
        resources=resources,
        cluster_domain=args.cluster_domain,
        telemetry=telemetry,
        auth=auth_defaults(args),
        redis_secret=args.redis_secret,
        redis_password_key=args.redis_password_key,
        gateway=gateway,
        judge=judge,
    )
    priority = args.priority if args.priority is not None else random.SystemRandom().randint(1, 2**31 - 1)
    registry = register(
        kopf.OperatorRegistry(), defaults, args.resync_interval, args.concurrency, args.require_secret_label
    )
    asyncio.run(
        kopf.operator(
            registry=registry,
            settings=operator_settings(options),
            clusterwide=options.clusterwide,
            namespaces=options.namespaces,
            standalone=options.peering is None,
            peering_name=options.peering,
            priority=priority if options.peering is not None else None,
            liveness_endpoint=options.liveness,
            memo=kopf.Memo(),
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="modelgate-operator", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _run_parser(sub)
    crdgen = sub.add_parser("crdgen", help="print the ServingEndpoint CRD")
    crdgen.add_argument("--stdout", action="store_true", help="print it (the default; kept for older scripts)")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args)
    sys.stdout.write(crd.render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
