"""kopf wiring: which events call the reconciler. The handlers themselves are plain async functions.

- ServingEndpoint events (create, update, the listing at start, and the echoes of the operator's own writes)
  -> reconcile, unless this process already reconciled that generation (level-triggered; nothing is returned
  to kopf, and kopf keeps no diff-base, so kopf never writes ``status`` or annotations).
- ServingEndpoint delete (finalizer) -> delete the children and the owned Secret explicitly (a cluster may
  run without a garbage collector), only those controller-owned by the endpoint's uid. The reconciler creates
  children only once kopf's finalizer is on the endpoint, so a delete at any moment leaves nothing behind.
- Index ``endpoints_by_secret``: (namespace, Secret name) -> endpoints referencing it. A Secret event then
  reconciles exactly those endpoints, within the watch latency (sub-second).
- Index ``endpoints_by_judge``: (namespace, endpoint J) -> endpoints whose guardrail judge is J (their proxies
  carry J's config, :mod:`.render_judge`). Any event of J (its spec, its status, its deletion), of a Secret J
  references, or of J's owned Secret then also reconciles those endpoints.
- Events of the operator's children (by the ``managed-by`` label: Deployments, ConfigMaps, Services, owned
  Secrets) -> reconcile the owning endpoint when the child was edited or deleted (drift) or, for Deployments,
  when its rollout state changed (ProxyAvailable and Ready follow it). The echo of the operator's own apply
  matches what it applied and causes nothing.
- A periodic resync (``--resync-interval``) reconciles every endpoint once in a while, as a safety net.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

import kopf

from modelgate_proxy.spec import GROUP, PLURAL, VERSION, is_secret_ref, parse_secret_ref
from modelgate_proxy.spec.gateway import GuardrailJudge

from .conditions import proxy_state_from
from .failures import kopf_error
from .judge_wiring import judge_of
from .kube import Kube, KubeError
from .reconcile import CONCURRENCY, Reconciler
from .render import ENDPOINT_LABEL, MANAGED_BY, ProxyDefaults

logger = logging.getLogger("modelgate_operator.handlers")

SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
RETRY_BACKOFF = 2.0
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"


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


def in_cluster_server() -> str | None:
    """The API server as client-go's in-cluster config finds it: ``KUBERNETES_SERVICE_HOST``/``_PORT``, no DNS
    (kopf's own service-account login assumes ``https://kubernetes.default.svc``, which needs cluster DNS)."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return None
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the service account; elsewhere: $KUBECONFIG (or ~/.kube/config)."""
    if os.path.exists(SA_TOKEN) and not os.environ.get("KUBECONFIG"):
        info: kopf.ConnectionInfo | None = kopf.login_with_service_account(**kwargs)
        server = in_cluster_server()
        if info is not None and server is not None:
            info = dataclasses.replace(info, server=server)
        return info
    info = kopf.login_with_kubeconfig(**kwargs)
    return info


def make_startup(
    defaults: ProxyDefaults, resync_interval: float = 0.0, concurrency: int = CONCURRENCY, require_label: bool = False
) -> Any:
    async def startup(*, memo: Any, **_: Any) -> None:
        kube = Kube.from_env(connections=2 * concurrency + 8)
        memo.reconciler = Reconciler(kube, defaults, concurrency, require_label=require_label)
        if resync_interval > 0:
            memo.resync = asyncio.create_task(memo.reconciler.resync_forever(resync_interval))

    return startup


async def cleanup(*, memo: Any, **_: Any) -> None:
    resync = getattr(memo, "resync", None)
    if resync is not None:
        resync.cancel()
    reconciler = getattr(memo, "reconciler", None)
    if reconciler is not None:
        await reconciler.close()
        await reconciler.kube.close()


async def endpoint_event(*, type: str | None, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    meta = body.get("metadata") or {}
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    try:
        if type == "DELETED":
            _reconciler(memo).forget(namespace, name)
        elif not meta.get("deletionTimestamp"):  # else the delete handler cleans up
            await _reconciler(memo).endpoint_event(body)
        if type is not None:  # not the initial listing: the endpoints' first reconciles cover it
            await _judged_by(memo, kwargs, namespace, {name}, f"judge endpoint {name} changed ({type})")
    except KubeError as exc:  # already scheduled for a retry; the message never carries a Secret's content
        logger.warning("reconcile of %s/%s failed: %s", namespace, name, exc)


async def _judged_by(memo: Any, kwargs: Mapping[str, Any], namespace: str, judges: set[str], why: str) -> None:
    """Reconcile the endpoints whose guardrail judge is one of ``judges``."""
    index: kopf.Index[tuple[str, str], str] | None = kwargs.get("endpoints_by_judge")
    if index is None:
        return
    for endpoint in sorted({e for judge in judges for e in index.get((namespace, judge), [])} - judges):
        logger.info("%s: reconciling %s/%s", why, namespace, endpoint)
        await _reconciler(memo).reconcile_by_name(namespace, endpoint)


async def delete_endpoint(*, name: str, namespace: str | None, uid: str | None, memo: Any, **_: Any) -> None:
    assert namespace is not None  # ServingEndpoints are namespaced
    assert uid is not None  # every object has one
    reconciler = _reconciler(memo)
    async with reconciler.lock(namespace, name):
        try:
            await reconciler.cleanup(namespace, name, uid)
        except Exception as exc:  # kopf retries a TemporaryError after its delay, gives up on a PermanentError
            raise kopf_error(exc) from exc


def make_indexes(default: GuardrailJudge | None) -> tuple[Any, Any]:
    """The two index functions; ``default`` is the operator's global guardrail judge, whose ``apiKey`` Secret an
    endpoint relying on it references as if its spec named it."""

    def endpoints_by_secret(
        *, namespace: str | None, name: str, spec: kopf.Spec, **_: Any
    ) -> dict[tuple[str | None, str], str]:
        key = judge_of(dict(spec), default)[1] if default is not None and default.api_key is not None else None
        return {(namespace, secret): name for secret in _references(dict(spec)) | ({key} if key else set())}

    def endpoints_by_judge(
        *, namespace: str | None, name: str, spec: kopf.Spec, **_: Any
    ) -> dict[tuple[str | None, str], str]:
        judge = judge_of(dict(spec), default)[0]
        return {(namespace, judge): name} if judge is not None and judge != name else {}

    return endpoints_by_secret, endpoints_by_judge


async def secret_event(
    *, type: str | None, namespace: str | None, name: str, labels: Mapping[str, str], body: kopf.Body, memo: Any,
    **kwargs: Any,
) -> None:
    if namespace is None:
        return
    _reconciler(memo).secrets.update(namespace, name, None if type == "DELETED" else (body.get("data") or {}), labels)
    if type is None:  # the initial listing: the endpoints' first reconciles cover it
        return
    owner = labels.get(ENDPOINT_LABEL) if labels.get(MANAGED_BY_LABEL) == MANAGED_BY else None
    if owner:
        await _reconciler(memo).child_changed(namespace, owner, "Secret", None if type == "DELETED" else dict(body))
    index: kopf.Index[tuple[str, str], str] = kwargs["endpoints_by_secret"]
    referencing = set(index.get((namespace, name), []))
    for endpoint in sorted(referencing):
        logger.info("Secret %s/%s changed (%s): reconciling %s", namespace, name, type, endpoint)
        await _reconciler(memo).reconcile_by_name(namespace, endpoint)
    await _judged_by(memo, kwargs, namespace, referencing | ({owner} if owner else set()),
                     f"Secret {namespace}/{name} of a judge endpoint changed ({type})")


async def deployment_event(
    *, type: str | None, namespace: str | None, labels: Mapping[str, str], body: kopf.Body, memo: Any, **_: Any
) -> None:
    endpoint = labels.get(ENDPOINT_LABEL)
    if type is None or not endpoint or namespace is None:
        return
    live = None if type == "DELETED" else dict(body)
    await _reconciler(memo).deployment_changed(namespace, endpoint, proxy_state_from(live), live)


async def child_event(
    *, type: str | None, namespace: str | None, labels: Mapping[str, str], body: kopf.Body, memo: Any, **_: Any
) -> None:
    endpoint = labels.get(ENDPOINT_LABEL)
    if type is None or not endpoint or namespace is None:
        return
    kind = str(body.get("kind") or "")
    await _reconciler(memo).child_changed(namespace, endpoint, kind, None if type == "DELETED" else dict(body))


# ------------------------------------------------------------------------------------------------ registry


def register(
    registry: kopf.OperatorRegistry,
    defaults: ProxyDefaults,
    resync_interval: float = 0.0,
    concurrency: int = CONCURRENCY,
    require_secret_label: bool = False,
) -> kopf.OperatorRegistry:
    """Attach every handler to ``registry`` (explicit, so tests and the CLI build the same operator)."""
    kopf.on.login(registry=registry)(login)
    kopf.on.startup(registry=registry)(make_startup(defaults, resync_interval, concurrency, require_secret_label))
    kopf.on.cleanup(registry=registry)(cleanup)
    resource = (GROUP, VERSION, PLURAL)
    kopf.on.event(*resource, registry=registry, id="endpoint-changed")(endpoint_event)
    kopf.on.delete(*resource, registry=registry, id="cleanup", backoff=RETRY_BACKOFF)(delete_endpoint)
    by_secret, by_judge = make_indexes(defaults.judge)
    kopf.index(*resource, registry=registry, id="endpoints_by_secret")(by_secret)
    kopf.index(*resource, registry=registry, id="endpoints_by_judge")(by_judge)
    kopf.on.event("", "v1", "secrets", registry=registry, id="secret-changed")(secret_event)
    managed = {MANAGED_BY_LABEL: MANAGED_BY}
    kopf.on.event("apps", "v1", "deployments", registry=registry, id="deployment-changed", labels=managed)(
        deployment_event
    )
    for plural in ("configmaps", "services"):
        kopf.on.event("", "v1", plural, registry=registry, id=f"{plural[:-1]}-changed", labels=managed)(child_event)
    return registry
