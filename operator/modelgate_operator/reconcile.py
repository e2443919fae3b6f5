"""One reconcile of one ServingEndpoint: read what is needed, apply the children, write the status.

Level-triggered and idempotent: it looks only at the endpoint's current spec and the Secrets it references,
applies byte-identical manifests when nothing changed (a server-side no-op) and skips the status PATCH when
the status would not change. Running it twice in a row changes nothing the second time.

Invalid config (checks of :mod:`.spec_problems`) or an unresolvable reference leaves the children as they are
(the previous config keeps serving, like a failed Databricks config update) and reports why in the status.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from modelgate_proxy.spec import ServingEndpointSpec

from . import conditions, failures, identity_wiring, render, render_auth, render_judge, secrets, spec_problems
from .children import ChildConflict, ChildWriteFailed, ChildWriter
from .gateway_sync import GatewaySync
from .judge_wiring import JudgeReader
from .kube import Kube
from .render import Owner, ProxyDefaults
from .reviews_binding import BindingProblem, ReviewsBinding
from .secretcache import SecretCache, digests
from .settings import FINALIZER

logger = logging.getLogger("modelgate_operator.reconcile")

OWNED_KINDS = ("Deployment", "Service", "ConfigMap", "Secret", "Role", "RoleBinding")
CONCURRENCY = 8
"""Reconciles in flight at once (others wait in FIFO order). A burst of new endpoints is then served roughly in
arrival order instead of all progressing together and finishing together, and the HTTP pool stays small."""
RETRY_BASE = 2.0
RETRY_MAX = 60.0
QUIET_FIRST_REASONS = frozenset({"Progressing", "DeploymentNotCreated"})
"""A new endpoint's first Ready=False with these reasons is the normal start of a rollout: no Event for it."""
DELETED_MEMORY = 4096
"""How many deleted endpoints' uids are remembered, so that an event queued before a deletion creates nothing."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a reconcile did (for logs and tests; never contains a credential)."""

    applied: bool
    status_written: bool
    ready: str
    reason: str
    retry: bool = False
    """The reconcile could not do everything for a reason that may pass (a conflicting object): try again later."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _rfc3339(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def contains(live: Any, wanted: Any) -> bool:
    """``wanted`` (a rendered manifest) is contained in ``live`` (the object as the server has it): every key we
    set has our value; fields the server or others added are ignored. Lists must match item by item."""
    if isinstance(wanted, Mapping):
        return isinstance(live, Mapping) and all(k in live and contains(live[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(live, list) and len(live) == len(wanted) and all(map(contains, live, wanted))
    return bool(live == wanted)


def _remembered(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What is kept of an applied child (and compared with a live one): a Secret's values only as digests, so
    the operator's memory holds no credential between reconciles."""
    if manifest.get("kind") != "Secret":
        return dict(manifest)
    return {**manifest, "data": digests(manifest.get("data") or {})}


class Reconciler:
    """Reconciles endpoints; one at a time per endpoint (endpoint, Secret, child and timer triggers share it).

    It remembers, per endpoint, the (uid, generation) it last reconciled successfully (so the events of its own
    status write, of kopf's finalizer patch and of re-listings cause no work), what it applied (to tell drift of
    a child from the echo of its own apply) and the Deployment state it saw. A failed reconcile is retried with
    a backoff; :meth:`resync_forever` re-reconciles everything now and then as a safety net.
    """

    def __init__(
        self, kube: Kube, defaults: ProxyDefaults, concurrency: int = CONCURRENCY, *, require_label: bool = False
    ) -> None:
        self.kube = kube
        self.require_label = require_label
        self.defaults = defaults
        self._slots = asyncio.Semaphore(concurrency)
        self.secrets = SecretCache()
        self.judges = JudgeReader(kube, self.secrets, defaults.judge)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._seen: dict[tuple[str, str], conditions.ProxyState] = {}
        self._handled: dict[tuple[str, str], tuple[str, int]] = {}
        self._applied: dict[tuple[str, str], dict[str, render.Manifest]] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._retries: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._last: dict[tuple[str, str], float] = {}
        self.children = ChildWriter(kube)
        self.reviews = ReviewsBinding(kube, defaults.auth.reviews_binding)
        self._deleted: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.gateway = GatewaySync(kube, self.reviews, defaults, self.secrets, require_label)  # off: a no-op

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self._locks.setdefault((namespace, name), asyncio.Lock())

    def forget(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        for memory in (self._locks, self._seen, self._handled, self._applied, self._failures, self._last):
            memory.pop(key, None)
        self.children.forget(namespace, name)
        retry = self._retries.pop(key, None)
        if retry is not None:
            retry.cancel()

    def known(self) -> list[tuple[str, str]]:
        """Endpoints this process has reconciled (for the periodic resync)."""
        return sorted(self._handled)

    # ------------------------------------------------------------------------------------------ triggers
    async def endpoint_event(self, body: Mapping[str, Any]) -> Outcome | None:
        """An endpoint event (create, update, re-listing, our own status write): reconcile unless this process
        already reconciled this generation of this object."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if FINALIZER not in (meta.get("finalizers") or ()):
            return None  # children only once the finalizer guarantees their cleanup: its patch is the next event
        async with self.lock(*key):
            if self._handled.get(key) == (meta.get("uid"), int(meta.get("generation") or 0)):
                return None
            return await self._reconcile(body)

    async def deployment_changed(
        self, namespace: str, name: str, state: conditions.ProxyState, live: Mapping[str, Any] | None
    ) -> Outcome | None:
        """Reconcile after a Deployment event when its rollout state differs from the one the last reconcile
        used, or it was edited or deleted behind the operator's back (not for the echo of our own apply)."""
        async with self.lock(namespace, name):  # after a reconcile in flight has recorded what it saw
            if self._seen.get((namespace, name)) == state and not self.drifted(namespace, name, "Deployment", live):
                return None
            return await self._reconcile_by_name(namespace, name)

    def drifted(self, namespace: str, name: str, kind: str, live: Mapping[str, Any] | None) -> bool:
        """The live child (None: deleted) no longer holds what this process last applied."""
        wanted = self._applied.get((namespace, name), {}).get(kind)
        if wanted is None:
            return False  # nothing applied by this process yet: its first reconcile is still to come
        return live is None or not contains(_remembered(live), wanted)

    async def child_changed(self, namespace: str, name: str, kind: str, live: Mapping[str, Any] | None) -> Outcome | None:
        """A ConfigMap, Service or owned Secret of endpoint ``name`` changed or was deleted: put it back if it
        differs from what was applied."""
        async with self.lock(namespace, name):
            if not self.drifted(namespace, name, kind, live):
                return None
            logger.info("%s of %s/%s was %s: reconciling", kind, namespace, name, "deleted" if live is None else "edited")
            return await self._reconcile_by_name(namespace, name)

    async def reconcile_by_name(self, namespace: str, name: str) -> Outcome | None:
        """Fetch the endpoint and reconcile it (used when a Secret or a child changed, and for retries)."""
        async with self.lock(namespace, name):
            return await self._reconcile_by_name(namespace, name)

    async def _reconcile_by_name(self, namespace: str, name: str) -> Outcome | None:
        body = await self.kube.get_endpoint(namespace, name)
        if body is None or body.get("metadata", {}).get("deletionTimestamp"):
            return None
        if FINALIZER not in (body["metadata"].get("finalizers") or ()):
            return None
        return await self._reconcile(body)

    async def reconcile(self, body: Mapping[str, Any]) -> Outcome | None:
        meta = body["metadata"]
        async with self.lock(meta["namespace"], meta["name"]):
            return await self._reconcile(body)

    async def _reconcile(self, body: Mapping[str, Any]) -> Outcome | None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if meta.get("uid") in self._deleted:
            return None  # a stale event of an endpoint whose children were deleted meanwhile
        try:
            async with self._slots:
                outcome = await self._reconcile_now(body)
            self.gateway.request(key[0])
        except Exception as exc:
            self._handled.pop(key, None)
            if failures.is_permanent(exc):  # the same input gives the same answer: wait for a change
                logger.warning("reconcile of %s/%s failed; not retried until the endpoint changes: %s", *key, exc)
            else:
                self._schedule_retry(key, failures.retry_delay(exc))
            raise
        if outcome.retry:
            self._handled.pop(key, None)
            self._schedule_retry(key)
            return outcome
        self._handled[key] = (meta.get("uid"), int(meta.get("generation") or 0))
        self._last[key] = time.monotonic()
        self._failures.pop(key, None)
        return outcome

    # ------------------------------------------------------------------------------------------ retries, resync
    def _schedule_retry(self, key: tuple[str, str], at_least: float = 0.0) -> None:
        failed = self._failures[key] = self._failures.get(key, 0) + 1
        if key in self._retries:
            return
        delay = min(max(RETRY_BASE * 2 ** (failed - 1), at_least), RETRY_MAX)
        logger.warning("reconcile of %s/%s failed (%d in a row): retrying in %.0fs", *key, failed, delay)
        self._retries[key] = asyncio.create_task(self._retry(key, delay))

    async def _retry(self, key: tuple[str, str], delay: float) -> None:
        await asyncio.sleep(delay)
        self._retries.pop(key, None)
        try:
            await self.reconcile_by_name(*key)
        except Exception as exc:  # already rescheduled by _reconcile
            logger.warning("retried reconcile of %s/%s failed: %s", *key, exc)

    def due(self, interval: float, now: float | None = None) -> list[tuple[str, str]]:
        """Known endpoints not reconciled for ``interval`` seconds (those reconciled since are idle-gated out)."""
        now = time.monotonic() if now is None else now
        return [key for key in self.known() if now - self._last.get(key, 0.0) >= interval]

    async def resync_forever(self, interval: float) -> None:
        """Reconcile every endpoint that has gone ``interval`` seconds without a reconcile (a safety net for a
        missed event); endpoints reconciled in the meantime for any reason are skipped."""
        while True:
            await asyncio.sleep(max(1.0, interval / 10))
            for key in self.due(interval):
                try:
                    await self.reconcile_by_name(*key)
                except Exception as exc:
                    logger.warning("periodic reconcile of %s/%s failed: %s", *key, exc)

    async def close(self) -> None:
        await self.gateway.close()
        for task in self._retries.values():
            task.cancel()
        self._retries.clear()

    async def _reconcile_now(self, body: Mapping[str, Any]) -> Outcome:
        meta = body["metadata"]
        owner = Owner(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])
        generation = int(meta.get("generation") or 0)
        previous = body.get("status") or {}
        url: str | None = None

        spec: ServingEndpointSpec | None = None
        config = conditions.Check("True", "ConfigValid", "the configuration is valid")
        secret_check = conditions.Check("Unknown", "NotChecked", "the configuration is not valid")
        written = conditions.Check("Unknown", "NotApplied", "the children are not written while the configuration or a "
                               "secret reference is not valid (the previous ones, if any, keep serving)")  # fmt: skip
        applied = retry = False
        auth: render_auth.EffectiveAuth | None = None
        binding: BindingProblem | None = None
        judge, judge_problem = render_judge.JudgeWiring(), None
        try:
            spec = ServingEndpointSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            config = conditions.Check("False", "InvalidSpec", spec_problems.validation_message(exc))
        if spec is not None:
            auth = render_auth.effective(spec, self.defaults.auth)
            shared = self.defaults.redis_secret is not None
            judge, judge_problem = await self.judges.wire(owner, spec)
            config = spec_problems.config_check(spec, self.defaults.replicas, shared, render_auth.problems(auth),
                                                judge_problem, self.defaults.judge is not None) or config
        if spec is not None and config.status == "True":
            fields = secrets.collect(spec) + render_judge.own_key_fields(spec)
            fetched = await self.secrets.fetch(owner.namespace, secrets.referenced_secret_names(fields),
                                               self.kube.secret_data)  # fmt: skip
            present = [n for n, d in fetched.items() if d is not None]
            unlabelled = await self.secrets.unlabelled(owner.namespace, present, self.kube.secret_labels) if (
                self.require_label) else set()  # fmt: skip
            try:
                resolved = secrets.resolve(fields, fetched)
                if unlabelled:
                    raise secrets.SecretNotReferenceable(
                        [(r, f.where) for f in fields if (r := f.reference) is not None and r.name in unlabelled]
                    )
            except secrets.SecretResolutionError as exc:
                secret_check = conditions.Check("False", exc.reason, str(exc))
            else:
                n = len(secrets.references(fields))
                secret_check = conditions.Check("True", "SecretsResolved", f"{n} secret reference(s) resolved")
                children = render.render(owner, spec, resolved, self.defaults, fields, judge)
                # Concurrently: the API server does not check that mounted Secrets/ConfigMaps exist (the kubelet
                # waits for them), and every child is applied before the status says so.
                order = children.in_apply_order()
                try:
                    binding = await identity_wiring.wire(self.kube, self.children, self.reviews, owner, children)
                    results = await self.children.apply_all(owner, order)
                except ChildConflict as exc:
                    written, retry = conditions.Check("False", "ChildConflict", str(exc)), True
                except ChildWriteFailed as exc:
                    written, retry = conditions.Check("False", exc.reason, str(exc)), exc.retryable
                else:
                    deployment_obj = results[order.index(children.deployment)]
                    self._applied[(owner.namespace, owner.name)] = {m["kind"]: _remembered(m) for m in order}
                    written = conditions.Check("True", "ChildrenApplied", "the proxy's Deployment, Service, ConfigMap "
                                           "and Secret are applied")  # fmt: skip
                    applied = True
        child = render.child_name(owner.name)
        if applied:
            deployment = conditions.proxy_state_from(deployment_obj)  # the apply's answer: no extra GET
            url = render.endpoint_url(owner, self.defaults)
        else:
            if await self.children.exists_owned(owner, "Deployment", child):
                deployment = await self.kube.proxy_state(owner.namespace, child)
            else:
                deployment = conditions.proxy_state_from(None)
            if await self.children.exists_owned(owner, "Service", child):
                url = render.endpoint_url(owner, self.defaults)
        self._seen[(owner.namespace, owner.name)] = deployment
        proxy = conditions.proxy_check(deployment)
        now = _now()
        desired = conditions.build_status(
            spec=spec,
            previous=previous,
            generation=generation,
            config=config,
            secrets=secret_check,
            children=written,
            proxy=proxy,
            url=url,
            now=_rfc3339(now),
            rollout=conditions.rollout(deployment),
            authentication=identity_wiring.check(auth if config.status == "True" else None, binding),
            auth_status=render_auth.status(auth) if auth is not None and config.status == "True" else None,
        )
        status_written = False
        if not conditions.same_status(previous, desired):
            await self.kube.patch_status(owner.namespace, owner.name, desired)
            status_written = True
            await self._events(body, previous, desired, now)
        ready = desired["conditions"][0]
        logger.info(
            "reconciled %s/%s generation %d: Ready=%s (%s)%s%s",
            owner.namespace,
            owner.name,
            generation,
            ready["status"],
            ready["reason"],
            ", children applied" if applied else "",
            ", status updated" if status_written else "",
        )
        return Outcome(applied=applied, status_written=status_written, ready=ready["status"], reason=ready["reason"],
                       retry=retry)  # fmt: skip

    async def _events(
        self, body: Mapping[str, Any], previous: Mapping[str, Any], desired: Mapping[str, Any], now: datetime.datetime
    ) -> None:
        first = not (previous.get("conditions") or [])
        posted: set[tuple[str, str]] = set()
        for cond in conditions.transitions(previous, dict(desired)):
            # Ready's transitions, and every failure to write a child (even while Ready is already False)
            if cond["type"] != conditions.READY and not (cond["type"] in (conditions.CHILDREN_APPLIED, conditions.AUTHENTICATED)
                                                         and cond["status"] == "False"):  # fmt: skip
                continue
            if first and cond["status"] == "False" and cond["reason"] in QUIET_FIRST_REASONS:
                continue
            kind = "Normal" if cond["status"] == "True" else "Warning"
            reason = cond["reason"]
            if (reason, cond["message"]) in posted:
                continue
            posted.add((reason, cond["message"]))
            try:
                await self.kube.post_event(body, type_=kind, reason=reason, message=cond["message"], now=now)
            except Exception as exc:
                logger.warning("could not record an event: %s", exc)

    async def cleanup(self, namespace: str, name: str, uid: str) -> list[str]:
        """Delete the children and the owned Secret of the endpoint with ``uid`` - only objects it controls (there
        may be no garbage collector). Returns what was deleted."""
        self._deleted[uid] = None
        while len(self._deleted) > DELETED_MEMORY:
            self._deleted.popitem(last=False)
        deleted = await self.children.delete_all(namespace, name, uid)
        await identity_wiring.release(self.kube, self.reviews, namespace, name)
        self.gateway.request(namespace)
        logger.info("deleted the children of %s/%s: %s", namespace, name, ", ".join(deleted) or "none left")
        self.forget(namespace, name)
        return deleted
