"""``modelgate serve``: run the proxy (standalone, and in the container the operator deploys).

    modelgate serve -f endpoint.yaml [-f more.yaml] [--secrets-dir DIR] [--host H] [--port P]
                    [--workers N] [--log-level LEVEL] [--max-body-bytes N]
                    [--connect-timeout S] [--read-timeout S] [--request-timeout S]
                    [--max-answer-bytes N] [--max-inflight-bytes N] [--head-timeout S] [--body-timeout S]
                    (--auth-config FILE | --api-keys PATH | --no-auth | --identity-header H [--groups-header H]
                     [--service-principal-header H] [--require-identity])
                    [--rate-limit-replicas N] [--usage-log FILE] [--payload-log FILE]
                    [--rate-limit-redis-url URL [--rate-limit-redis-password-file FILE]
                     [--rate-limit-redis-prefix P] [--rate-limit-redis-timeout S]]
                    [--rate-limit-unavailable closed|open] [--rate-limit-unavailable-endpoint NAME=closed|open]
                    [--rate-limit-default-max-tokens N] [--usage-metrics-principals N]
                    [--table-root ROOT] [--table-storage-options FILE] [--table-batch-rows N]
                    [--table-batch-seconds S] [--table-buffer-mb N] [--table-flush-seconds S]
                    [--table-retry-max-seconds S] [--table-spill-dir DIR] [--table-spill-mb N]
                    [--management-namespace NS [--management-server URL] [--management-token-file FILE]
                     [--management-ca-file FILE]]
                    [--provider-max-attempts N] [--retry-backoff-base S] [--retry-backoff-max S]
                    [--retry-max-wait S] [--first-byte-timeout S] [--cooldowns auto|on|off] [--cooldown-max S]
                    [--guardrail-judge-* ...] [--judge-file FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from typing import Any

import orjson
import uvicorn

from ..budget import DEFAULT_MAX_INFLIGHT_BYTES
from ..credentials import FileCredentials
from ..endpoints.services import GatewaySettings
from ..server import create_app
from ..server.app import DEFAULT_REQUEST_TIMEOUT, GatewayApp
from ..server.body import DEFAULT_MAX_BODY_BYTES
from ..server.http_protocol import DEFAULT_BODY_TIMEOUT, DEFAULT_HEAD_TIMEOUT, protocol_settings
from ..server.http_protocol import configure as configure_protocol
from ..stages.identity.auth_config import AuthConfig
from ..stages.rate_limits.admission import Policy
from ..stages.rate_limits.redis_settings import DEFAULT_PREFIX, DEFAULT_TIMEOUT, RedisConfigError, RedisSettings
from ..stages.rate_limits.reservation import DEFAULT_MAX_TOKENS
from ..traces import TracingConfigError, tracing_wanted
from ..upstream import DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_ANSWER_BYTES, DEFAULT_READ_TIMEOUT, UpstreamSettings
from .auth_flags import add_auth_arguments, auth_arguments, auth_choice, describe
from .backpressure_options import add_backpressure_arguments, backpressure_arguments, retry_policy
from .judge_options import add_judge_arguments, judge_arguments, judge_settings
from .management_options import add_management_arguments, management_arguments, management_settings
from .manifests import ConfigError, load_endpoints
from .table_options import add_table_arguments, table_arguments, table_settings

ENV_SERVE_ARGS = "MODELGATE_SERVE_ARGS"
ENV_REDIS_URL = "MODELGATE_RATE_LIMIT_REDIS_URL"
ENV_REDIS_PASSWORD_FILE = "MODELGATE_RATE_LIMIT_REDIS_PASSWORD_FILE"
"""How ``serve`` hands its arguments to worker processes when ``--workers`` is above 1."""

log = logging.getLogger("modelgate")


def add_serve_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``serve`` on the ``modelgate`` command's subparsers."""
    serve: argparse.ArgumentParser = sub.add_parser("serve", help="serve ServingEndpoint manifests", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("-f", "--file", dest="files", action="append", default=[], metavar="FILE",
                       help="a YAML file with one or more ServingEndpoint manifests (repeatable; required unless "
                            "--management-namespace serves the namespace's endpoints)")
    serve.add_argument("--secrets-dir", default=None, metavar="DIR",
                       help="where {{secrets/<name>/<key>}} references are read: DIR/<name>/<key>")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                       help=f"largest accepted request body (default {DEFAULT_MAX_BODY_BYTES}, 16 MiB)")
    serve.add_argument("--connect-timeout", type=float, default=DEFAULT_CONNECT_TIMEOUT,
                       help="seconds to connect to a provider")
    serve.add_argument("--read-timeout", type=float, default=DEFAULT_READ_TIMEOUT,
                       help="seconds to wait for the next bytes from a provider")
    serve.add_argument("--request-timeout", type=float, default=DEFAULT_REQUEST_TIMEOUT,
                       help="total seconds a query request may take, a stream included (default 600; an endpoint's "
                            "spec.proxy.requestTimeoutSeconds wins)")
    serve.add_argument("--max-answer-bytes", type=int, default=DEFAULT_MAX_ANSWER_BYTES,
                       help=f"largest provider answer read (default {DEFAULT_MAX_ANSWER_BYTES}, 16 MiB)")
    serve.add_argument("--max-inflight-bytes", type=int, default=DEFAULT_MAX_INFLIGHT_BYTES,
                       help="most bytes of request bodies and provider answers in flight at once; past it, 503 "
                            f"with retry-after (default {DEFAULT_MAX_INFLIGHT_BYTES}, 32 MiB)")
    serve.add_argument("--head-timeout", type=float, default=DEFAULT_HEAD_TIMEOUT,
                       help="seconds a request line and headers may take to arrive (default 10)")
    serve.add_argument("--body-timeout", type=float, default=DEFAULT_BODY_TIMEOUT,
                       help="seconds a request body may take to arrive after its headers (default 60)")
    gateway = serve.add_argument_group(
        "AI Gateway", "authentication (exactly one of --auth-config, --api-keys, the identity-header flags (trusted "
                      "headers: only behind an authenticating proxy) or --no-auth), rate limits, records")
    add_auth_arguments(gateway)
    gateway.add_argument("--rate-limit-replicas", type=int, default=1, metavar="N",
                         help="proxy replicas sharing the traffic, with the in-process counters: each enforces "
                              "ceil(limit / N) (default 1; not with --rate-limit-redis-url)")
    gateway.add_argument("--rate-limit-redis-url", default=os.environ.get(ENV_REDIS_URL) or None, metavar="URL",
                         help="count rate limits in this Redis, shared by every replica and worker: redis://host:port"
                              "[/db] or rediss:// (TLS), no password in it (env " + ENV_REDIS_URL + ")")
    gateway.add_argument("--rate-limit-redis-password-file", metavar="FILE",
                         default=os.environ.get(ENV_REDIS_PASSWORD_FILE) or None,
                         help="file with the Redis password, e.g. a mounted Secret; read for each new connection "
                              "(env " + ENV_REDIS_PASSWORD_FILE + ")")
    gateway.add_argument("--rate-limit-redis-prefix", default=DEFAULT_PREFIX, metavar="PREFIX",
                         help=f"prefix of the Redis keys, for installations sharing one Redis (default {DEFAULT_PREFIX})")
    gateway.add_argument("--rate-limit-redis-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                         help=f"seconds to wait for Redis per command (default {DEFAULT_TIMEOUT})")
    gateway.add_argument("--rate-limit-unavailable", choices=["closed", "open"], default="closed",
                         help="while Redis is unreachable, endpoints with rate limits refuse calls (closed: 503, "
                              "the default) or admit them unchecked (open)")
    gateway.add_argument("--rate-limit-unavailable-endpoint", action="append", default=[], metavar="NAME=POLICY",
                         help="the same for one endpoint (repeatable), e.g. chat=open")
    gateway.add_argument("--rate-limit-default-max-tokens", type=int, default=DEFAULT_MAX_TOKENS, metavar="N",
                         help="output tokens a request without max_tokens reserves on token limits "
                              f"(default {DEFAULT_MAX_TOKENS})")
    gateway.add_argument("--usage-metrics-principals", type=int, default=100, metavar="N",
                         help="principals per endpoint with usage series of their own; the rest count as "
                              "principal=\"other\" (default 100; 0: no per-principal series)")
    gateway.add_argument("--usage-log", default=None, metavar="FILE",
                         help="where usage records go as JSON lines (default -: standard output; with "
                              "--table-root: none unless given)")
    gateway.add_argument("--payload-log", default=None, metavar="FILE",
                         help="where payload records go as JSON lines (default -: standard output; with "
                              "--table-root: none unless given)")
    add_table_arguments(serve)
    add_management_arguments(serve)
    add_judge_arguments(serve)
    add_backpressure_arguments(serve)
    serve.set_defaults(func=_serve)
    return serve


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = uvicorn_config(args)
    except ConfigError as exc:
        print(f"modelgate: {exc}", file=sys.stderr)
        return 2
    uvicorn.Server(config).run()
    return 0


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "files": list(args.files),
        "secrets_dir": args.secrets_dir,
        "max_body_bytes": args.max_body_bytes,
        "connect_timeout": args.connect_timeout,
        "read_timeout": args.read_timeout,
        "request_timeout": args.request_timeout,
        "max_answer_bytes": args.max_answer_bytes,
        "max_inflight_bytes": args.max_inflight_bytes,
        "head_timeout": args.head_timeout,
        "body_timeout": args.body_timeout,
        **auth_arguments(args),
        "rate_limit_replicas": args.rate_limit_replicas,
        "rate_limit_redis_url": args.rate_limit_redis_url,
        "rate_limit_redis_password_file": args.rate_limit_redis_password_file,
        "rate_limit_redis_prefix": args.rate_limit_redis_prefix,
        "rate_limit_redis_timeout": args.rate_limit_redis_timeout,
        "rate_limit_unavailable": args.rate_limit_unavailable,
        "rate_limit_unavailable_endpoint": list(args.rate_limit_unavailable_endpoint),
        "rate_limit_default_max_tokens": args.rate_limit_default_max_tokens,
        "usage_metrics_principals": args.usage_metrics_principals,
        "usage_log": args.usage_log,
        "payload_log": args.payload_log,
        **table_arguments(args),
        **management_arguments(args),
        **judge_arguments(args),
        "tracing": _tracing_wanted(),
        **backpressure_arguments(args),
    }


def _tracing_wanted() -> bool:
    try:
        return tracing_wanted(os.environ)
    except TracingConfigError as exc:
        raise ConfigError(str(exc)) from None


def gateway_settings(settings: dict[str, Any]) -> GatewaySettings:
    """The AI Gateway options of the ``serve`` settings; raises :class:`ConfigError` when they cannot work."""
    auth, identity = auth_choice(settings)
    replicas = settings.get("rate_limit_replicas")
    replicas = 1 if replicas is None else int(replicas)
    if replicas < 1:
        raise ConfigError("--rate-limit-replicas must be at least 1")
    redis = _redis_settings(settings)
    if redis is not None and replicas > 1:
        raise ConfigError("--rate-limit-replicas divides limits for the in-process counters only; with "
                          "--rate-limit-redis-url every replica shares one count: leave it out")
    default_max_tokens = settings.get("rate_limit_default_max_tokens")
    default_max_tokens = DEFAULT_MAX_TOKENS if default_max_tokens is None else int(default_max_tokens)
    if default_max_tokens < 1:
        raise ConfigError("--rate-limit-default-max-tokens must be at least 1")
    principals = settings.get("usage_metrics_principals")
    principals = 100 if principals is None else int(principals)
    if principals < 0:
        raise ConfigError("--usage-metrics-principals must be 0 or more")
    store, tables = table_settings(settings)
    default_log = None if store is not None else "-"  # with tables, JSON lines only when asked for
    return GatewaySettings(
        identity=identity, auth=auth, rate_limit_replicas=replicas, rate_limit_redis=redis,
        rate_limit_unavailable=_policy(settings.get("rate_limit_unavailable") or "closed", "--rate-limit-unavailable"),
        rate_limit_unavailable_for=tuple(_endpoint_policy(item)
                                         for item in settings.get("rate_limit_unavailable_endpoint") or ()),
        rate_limit_default_max_tokens=default_max_tokens, usage_principals=principals,
        usage_log=settings.get("usage_log") or default_log, payload_log=settings.get("payload_log") or default_log,
        table_store=store, tables=tables, guardrail_judge=judge_settings(settings),
        tracing=bool(settings.get("tracing")),
        retry=retry_policy(settings))


def _redis_settings(settings: dict[str, Any]) -> RedisSettings | None:
    url = settings.get("rate_limit_redis_url")
    if not url:
        if settings.get("rate_limit_redis_password_file"):
            raise ConfigError("--rate-limit-redis-password-file needs --rate-limit-redis-url")
        return None
    redis = RedisSettings(url, settings.get("rate_limit_redis_password_file") or None,
                          settings.get("rate_limit_redis_prefix") or DEFAULT_PREFIX,
                          float(settings.get("rate_limit_redis_timeout") or DEFAULT_TIMEOUT))
    try:
        redis.check()
    except RedisConfigError as exc:
        raise ConfigError(str(exc)) from None
    return redis


def _policy(value: str, flag: str) -> Policy:
    if value == "closed":
        return "closed"
    if value == "open":
        return "open"
    raise ConfigError(f"{flag}: the policy is closed or open, not {value!r}")


def _endpoint_policy(item: str) -> tuple[str, Policy]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise ConfigError(f"--rate-limit-unavailable-endpoint wants NAME=closed|open, not {item!r}")
    return name, _policy(value, "--rate-limit-unavailable-endpoint")


def app_from_settings(settings: dict[str, Any]) -> GatewayApp:
    """The app for the ``serve`` settings (files are loaded and validated here)."""
    gateway = gateway_settings(settings)  # first: no authentication chosen stops serve before anything is read
    if not settings["files"] and not settings.get("management_namespace"):
        raise ConfigError("no endpoints to serve: give -f FILE (or --management-namespace NS)")
    endpoints = load_endpoints(settings["files"]) if settings["files"] else []
    judges = load_endpoints(settings["judge_files"]) if settings.get("judge_files") else []
    configure_protocol(head_timeout=settings.get("head_timeout"), body_timeout=settings.get("body_timeout"))
    names = {endpoint.name for endpoint in endpoints}
    if twice := sorted(names & {judge.name for judge in judges}):
        raise ConfigError(f"--judge-file: {', '.join(twice)} is also a served endpoint (-f); name it once")
    for name, _policy_of in gateway.rate_limit_unavailable_for:
        if name not in names:
            raise ConfigError(f"--rate-limit-unavailable-endpoint names {name!r}, which is not a served endpoint")
    management = management_settings(settings)
    if management is not None and (not isinstance(gateway.auth, AuthConfig) or gateway.auth.mode == "none"):
        raise ConfigError("--management-namespace needs authentication (--auth-config or --api-keys, not --no-auth "
                          "or the identity headers): every management call is authenticated and authorized by "
                          "Kubernetes RBAC")
    return create_app(
        endpoints,
        credentials=FileCredentials(settings["secrets_dir"]),
        upstream=UpstreamSettings(connect_timeout=settings["connect_timeout"], read_timeout=settings["read_timeout"],
                                  max_answer_bytes=settings.get("max_answer_bytes") or DEFAULT_MAX_ANSWER_BYTES),
        max_body_bytes=settings["max_body_bytes"],
        gateway=gateway,
        max_inflight_bytes=settings.get("max_inflight_bytes") or DEFAULT_MAX_INFLIGHT_BYTES,
        request_timeout=settings.get("request_timeout") or DEFAULT_REQUEST_TIMEOUT,
        management=management,
        judges=judges,
    )


def app_from_env() -> GatewayApp:
    """uvicorn factory for worker processes (``--workers`` above 1)."""
    return app_from_settings(orjson.loads(os.environ[ENV_SERVE_ARGS]))


def uvicorn_config(args: argparse.Namespace) -> uvicorn.Config:
    """The uvicorn config ``serve`` runs; raises :class:`ConfigError` for unusable manifests."""
    settings = _settings(args)
    if args.workers > 1 and settings.get("table_spill_dir"):
        raise ConfigError("--table-spill-dir is for one process (workers would replay each other's batches): "
                          "use --workers 1 (and replicas), or leave the spill directory out")
    app = app_from_settings(settings)  # validates even when workers load their own copy
    names = ", ".join(app.state.gateway.endpoints)
    services = app.state.gateway.services
    log.log(logging.WARNING if services.open else logging.INFO, "serving endpoints: %s; %s", names,
            describe(services.auth_mode, services.open))
    common: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "access_log": False,
        "lifespan": "on",
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        **protocol_settings(),
        "server_header": False,
        "backlog": 2048,
    }
    if args.workers > 1:
        os.environ[ENV_SERVE_ARGS] = orjson.dumps(settings).decode()
        return uvicorn.Config("modelgate_proxy.cli.serve:app_from_env", factory=True, workers=args.workers, **common)
    return uvicorn.Config(app, **common)
