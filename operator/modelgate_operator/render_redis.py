"""Pure rendering of the proxy's rate-limit Redis wiring (the operator's ``--redis-secret``): the URL reaches
``modelgate serve`` as ``MODELGATE_RATE_LIMIT_REDIS_URL`` from the Secret's ``url`` key (a ``secretKeyRef``:
never in the pod spec itself), the password as a file mounted from the same Secret
(``--rate-limit-redis-password-file``, read again for each new connection: a rotated Secret is picked up). The
Secret must exist in the endpoint's namespace (the chart creates it in its own). Without it, the in-process
counters' share of each limit (:func:`rate_limit_args`)."""

from __future__ import annotations

from typing import Any

from modelgate_proxy.spec import ServingEndpointSpec

Manifest = dict[str, Any]

REDIS_DIR = "/etc/modelgate/redis"
URL_ENV = "MODELGATE_RATE_LIMIT_REDIS_URL"


def redis_args(secret: str | None, password_key: str) -> list[str]:
    """The ``serve`` flags of the wiring (the password file; the URL comes from the environment)."""
    if secret is None or not password_key:
        return []
    return ["--rate-limit-redis-password-file", f"{REDIS_DIR}/password"]


def wire_redis(container: Manifest, volumes: list[Manifest], secret: str | None, password_key: str) -> None:
    """Add the URL variable, and the password volume and its mount, to the proxy ``container``."""
    if secret is None:
        return
    container["env"] = [{"name": URL_ENV, "valueFrom": {"secretKeyRef": {"name": secret, "key": "url"}}}]
    if password_key:
        container["volumeMounts"].append({"name": "redis", "mountPath": REDIS_DIR, "readOnly": True})
        volumes.append({"name": "redis", "secret": {"secretName": secret, "defaultMode": 0o440,
                                                    "items": [{"key": password_key, "path": "password"}]}})


def rate_limit_args(spec: ServingEndpointSpec, replicas: int, redis: bool = False, namespace: str = "") -> list[str]:
    """With rate limits and the in-process counters, each of a fixed number of replicas enforces
    ceil(limit / replicas) (an autoscaled Deployment divides nothing: see :mod:`.render_scaling`). With Redis
    (``redis``) every replica shares one count: the prefix keeps namespaces apart, nothing is divided."""
    if redis:
        return ["--rate-limit-redis-prefix", f"modelgate:{namespace}"]
    gateway = spec.ai_gateway
    autoscaled = spec.proxy is not None and spec.proxy.autoscaling is not None
    if gateway is None or not gateway.rate_limits or replicas <= 1 or autoscaled:
        return []
    return ["--rate-limit-replicas", str(replicas)]
