"""kopf wiring: which events call the reconciler. The handlers themselves are plain async functions.

- ServingEndpoint create / update / resume -> reconcile (level-triggered; returns nothing to kopf, so kopf
  never writes ``status``).
- ServingEndpoint delete (finalizer) -> delete the children and the owned Secret explicitly (a cluster may
  run without a garbage collector).
- Index ``endpoints_by_secret``: (namespace, Secret name) -> endpoints referencing it. A Secret event then
  reconciles exactly those endpoints, within the watch latency (sub-second).
- Deployment events (only the operator's, by label) -> reconcile the owning endpoint, so ProxyAvailable and
  Ready follow the Deployment's status.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import kopf

from modelgate_proxy.spec import GROUP, PLURAL, VERSION, is_secret_ref, parse_secret_ref

from .kube import Kube
from .reconcile import Reconciler
from .render import ENDPOINT_LABEL, MANAGED_BY, ProxyDefaults
from .status import proxy_state_from

logger = logging.getLogger("modelgate_operator.handlers")

SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
RETRY_BACKOFF = 2.0


def _reconciler(memo: Any) -> Reconciler:
    reconciler: Reconciler = memo.reconciler
    return reconciler


def _references(value: Any) -> set[str]:
    """Secret names referenced anywhere in a raw spec (fast: no model validation)."""
    found: set[str] = set()
    if isinstance(value, str):
        if is_secret_ref(value):
            found.add(parse_secret_ref(value).name)
    elif isinstance(value, Mapping):
        for item in value.values():
            found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


# ------------------------------------------------------------------------------------------------ handlers


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the service account; elsewhere: $KUBECONFIG (or ~/.kube/config)."""
    if os.path.exists(SA_TOKEN) and not os.environ.get("KUBECONFIG"):
        info: kopf.ConnectionInfo | None = kopf.login_with_service_account(**kwargs)
        return info
    info = kopf.login_with_kubeconfig(**kwargs)
    return info


def make_startup(defaults: ProxyDefaults) -> Any:
    async def startup(*, memo: Any, **_: Any) -> None:
        memo.reconciler = Reconciler(Kube.from_env(), defaults)

    return startup


async def cleanup(*, memo: Any, **_: Any) -> None:
    reconciler = getattr(memo, "reconciler", None)
    if reconciler is not None:
        await reconciler.kube.close()


async def reconcile_endpoint(*, body: kopf.Body, memo: Any, **_: Any) -> None:
    await _reconciler(memo).reconcile(body)


async def delete_endpoint(*, name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    assert namespace is not None  # ServingEndpoints are namespaced
    reconciler = _reconciler(memo)
    async with reconciler.lock(namespace, name):
        await reconciler.cleanup(namespace, name)


def endpoints_by_secret(
    *, namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str | None, str], str]:
    return {(namespace, secret): name for secret in _references(dict(spec))}


async def secret_event(*, type: str | None, namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    if type is None or namespace is None:  # the initial listing: resume handlers cover existing endpoints
        return
    index: kopf.Index[tuple[str, str], str] = kwargs["endpoints_by_secret"]
    for endpoint in sorted(set(index.get((namespace, name), []))):
        logger.info("Secret %s/%s changed (%s): reconciling %s", namespace, name, type, endpoint)
        await _reconciler(memo).reconcile_by_name(namespace, endpoint)


async def deployment_event(
    *, type: str | None, namespace: str | None, labels: Mapping[str, str], body: kopf.Body, memo: Any, **_: Any
) -> None:
    endpoint = labels.get(ENDPOINT_LABEL)
    if type is None or not endpoint or namespace is None:
        return
    state = proxy_state_from(None if type == "DELETED" else dict(body))
    await _reconciler(memo).deployment_changed(namespace, endpoint, state)


# ------------------------------------------------------------------------------------------------ registry


def register(registry: kopf.OperatorRegistry, defaults: ProxyDefaults) -> kopf.OperatorRegistry:
    """Attach every handler to ``registry`` (explicit, so tests and the CLI build the same operator)."""
    kopf.on.login(registry=registry)(login)
    kopf.on.startup(registry=registry)(make_startup(defaults))
    kopf.on.cleanup(registry=registry)(cleanup)
    resource = (GROUP, VERSION, PLURAL)
    kopf.on.resume(*resource, registry=registry, id="reconcile-resume", backoff=RETRY_BACKOFF)(reconcile_endpoint)
    kopf.on.create(*resource, registry=registry, id="reconcile-create", backoff=RETRY_BACKOFF)(reconcile_endpoint)
    kopf.on.update(*resource, registry=registry, id="reconcile-update", backoff=RETRY_BACKOFF)(reconcile_endpoint)
    kopf.on.delete(*resource, registry=registry, id="cleanup", backoff=RETRY_BACKOFF)(delete_endpoint)
    kopf.index(*resource, registry=registry, id="endpoints_by_secret")(endpoints_by_secret)
    kopf.on.event("", "v1", "secrets", registry=registry, id="secret-changed")(secret_event)
    kopf.on.event(
        "apps", "v1", "deployments", registry=registry, id="deployment-changed",
        labels={"app.kubernetes.io/managed-by": MANAGED_BY},
    )(deployment_event)  # fmt: skip
    return registry
