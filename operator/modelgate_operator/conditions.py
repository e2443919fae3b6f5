"""The status an endpoint should show, computed from what the reconcile found (pure; the clock is passed in).

Conditions follow the Kubernetes API conventions (``metav1.Condition``): ``Ready`` summarises
``ConfigValid``, ``SecretsResolved``, ``ChildrenApplied`` and ``ProxyAvailable``; each carries ``observedGeneration``, and its
``lastTransitionTime`` only moves when its ``status`` changes. ``state`` mirrors Databricks'
``ready``/``config_update``; ``servedEntities`` gives per-entity state; ``entities`` is the one-line summary
printed by ``kubectl get servingendpoints``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from modelgate_proxy.spec import ServingEndpointSpec

Status = dict[str, Any]
CondStatus = Literal["True", "False", "Unknown"]

READY = "Ready"
CONFIG_VALID = "ConfigValid"
SECRETS_RESOLVED = "SecretsResolved"
CHILDREN_APPLIED = "ChildrenApplied"
PROXY_AVAILABLE = "ProxyAvailable"
AUTHENTICATED = "Authenticated"
"""Whether callers must authenticate (False with reason AuthenticationDisabled: the endpoint is open). Not part of
Ready: an open endpoint serves; the condition, ``status.authentication`` and an Event say that it is open."""
CONDITION_TYPES = (READY, CONFIG_VALID, SECRETS_RESOLVED, CHILDREN_APPLIED, PROXY_AVAILABLE, AUTHENTICATED)
NOT_CHECKED = "NotChecked"
GUARDRAILS_NOT_ENFORCED = "GuardrailsNotEnforced"


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one sub-condition."""

    status: CondStatus
    reason: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class ProxyState:
    """What the Deployment reports (all zero while no controller/kubelet has acted on it).

    ``current`` is ``status.replicas`` (pods of the old and the new template); ``progressing`` and
    ``progressing_reason`` are the status and reason of the Deployment's ``Progressing`` condition ("" when the
    Deployment controller has not written one)."""

    exists: bool
    generation: int = 0
    observed_generation: int = 0
    replicas: int = 1
    updated: int = 0
    available: int = 0
    current: int = 0
    progressing: str = ""
    progressing_reason: str = ""


def proxy_state_from(deployment: Mapping[str, Any] | None) -> ProxyState:
    """ProxyState from a Deployment object (as a dict), None meaning it does not exist."""
    if deployment is None:
        return ProxyState(exists=False)
    spec = deployment.get("spec") or {}
    st = deployment.get("status") or {}
    replicas = spec.get("replicas")
    progressing = next((c for c in st.get("conditions") or () if c.get("type") == "Progressing"), None) or {}
    return ProxyState(
        exists=True,
        generation=int((deployment.get("metadata") or {}).get("generation") or 0),
        observed_generation=int(st.get("observedGeneration") or 0),
        replicas=int(replicas) if replicas is not None else 1,
        updated=int(st.get("updatedReplicas") or 0),
        available=int(st.get("availableReplicas") or 0),
        current=int(st.get("replicas") or 0),
        progressing=str(progressing.get("status") or ""),
        progressing_reason=str(progressing.get("reason") or ""),
    )


Rollout = Literal["InProgress", "Complete", "Failed"]
IN_PROGRESS: Rollout = "InProgress"
COMPLETE: Rollout = "Complete"
FAILED: Rollout = "Failed"
ROLLOUT_COMPLETE_REASON = "NewReplicaSetAvailable"
"""The Deployment controller's ``Progressing`` reason once the current template is fully rolled out."""
DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"


def rollout(state: ProxyState | None) -> Rollout:
    """Where the rollout of the Deployment's current pod template stands, as the Deployment controller says.

    - Failed: ``Progressing=False`` (``ProgressDeadlineExceeded``: no progress for ``progressDeadlineSeconds``,
      e.g. pods that crash-loop or whose image cannot be pulled);
    - Complete: ``Progressing=True`` with reason ``NewReplicaSetAvailable``, however many replicas are available
      now (pods that fail after a finished rollout are not a rollout in progress);
    - InProgress: the Deployment does not exist or its generation is not observed yet, or (without a
      ``Progressing`` verdict, e.g. while the controller is still at work) ``kubectl rollout status`` would wait:
      replicas not updated yet, old replicas not terminated yet, or updated replicas not available yet.
    """
    if state is None or not state.exists or state.observed_generation < state.generation:
        return IN_PROGRESS
    if state.progressing == "False":
        return FAILED
    if state.progressing == "True" and state.progressing_reason == ROLLOUT_COMPLETE_REASON:
        return COMPLETE
    if state.updated < state.replicas or state.current > state.updated or state.available < state.updated:
        return IN_PROGRESS
    return COMPLETE


def rolling_out(state: ProxyState | None) -> bool:
    """The Deployment controller has not yet finished (nor given up) rolling out the current pod template."""
    return rollout(state) == IN_PROGRESS


def proxy_check(state: ProxyState | None) -> Check:
    """ProxyAvailable from the Deployment's status: True while at least one proxy replica is available.

    During a rollout the previous pods keep serving, so the endpoint stays available (and ``configUpdate`` says
    IN_PROGRESS). Without a Deployment controller and kubelet (the local control plane) no replica ever becomes
    available, so this stays False with reason Progressing. A rollout that is over with no replica available
    (``NoAvailableReplicas``) or that exceeded its progress deadline (``ProgressDeadlineExceeded``) is a failure.
    """
    if state is None or not state.exists:
        return Check("False", "DeploymentNotCreated", "the proxy Deployment has not been created")
    if state.replicas == 0:
        return Check("False", "ScaledToZero", "the proxy is scaled to zero replicas (spec.proxy.replicas: 0): "
                     "nothing serves requests")  # fmt: skip
    progress = f"{state.updated}/{state.replicas} replicas updated, {state.available} available"
    phase = rollout(state)
    if phase == FAILED:
        stalled = f"the proxy rollout made no progress within the Deployment's progress deadline: {progress}"
        if state.available < 1:
            return Check("False", DEADLINE_EXCEEDED, stalled)
        return Check("True", DEADLINE_EXCEEDED, f"{stalled} (the previous pods keep serving)")
    if state.available < 1:
        if phase == IN_PROGRESS:
            return Check("False", "Progressing", f"waiting for the proxy: {progress}")
        return Check("False", "NoAvailableReplicas", f"no proxy replica is available: {progress}")
    if phase == IN_PROGRESS:
        return Check("True", "RollingOut", f"rolling out a new proxy configuration: {progress}")
    return Check("True", "MinimumReplicasAvailable", f"{state.available}/{state.replicas} proxy replicas available")


def ready_check(config: Check, secrets: Check, proxy: Check, children: Check | None = None) -> Check:
    for check in (config, secrets, children or config, proxy):
        if check.status != "True":
            return Check(check.status, check.reason, check.message)
    if config.reason == GUARDRAILS_NOT_ENFORCED:  # serving, but not everything the spec asks for
        return Check("True", GUARDRAILS_NOT_ENFORCED, "the endpoint is serving WITHOUT some requested guardrails: "
                     + config.message.rsplit(": ", 1)[-1])  # fmt: skip
    return Check("True", "EndpointReady", "the endpoint is serving")


def merge_conditions(
    previous: Sequence[Mapping[str, Any]] | None, checks: Mapping[str, Check], generation: int, now: str
) -> list[dict[str, Any]]:
    """New conditions in a fixed order; ``lastTransitionTime`` is kept unless ``status`` changed."""
    before = {c.get("type"): c for c in previous or ()}
    out: list[dict[str, Any]] = []
    for ctype in CONDITION_TYPES:
        check = checks[ctype]
        old = before.get(ctype)
        keep = old is not None and old.get("status") == check.status and old.get("lastTransitionTime")
        out.append(
            {
                "type": ctype,
                "status": check.status,
                "reason": check.reason,
                "message": check.message,
                "lastTransitionTime": old["lastTransitionTime"] if keep and old is not None else now,
                "observedGeneration": generation,
            }
        )
    return out


def traffic(spec: ServingEndpointSpec) -> dict[str, int]:
    """Effective name -> traffic percentage (a single entity without trafficConfig gets 100)."""
    names = [e.effective_name for e in spec.served_entities]
    if spec.traffic_config is None:
        return {names[0]: 100} if len(names) == 1 else dict.fromkeys(names, 0)
    routes = {r.served_entity_name: r.traffic_percentage for r in spec.traffic_config.routes}
    return {n: routes.get(n, 0) for n in names}


def entities_summary(spec: ServingEndpointSpec) -> str:
    """``gpt-4o=90%,claude=10%`` (for the printer column)."""
    return ",".join(f"{name}={pct}%" for name, pct in traffic(spec).items())


def _entity_state(ready: Check, config: Check, secrets: Check, phase: Rollout, children: Check) -> tuple[str, str]:
    if ready.status == "True":
        return "DEPLOYMENT_READY", ""
    if config.status == "False" or secrets.status == "False" or children.status == "False" or phase != IN_PROGRESS:
        return "DEPLOYMENT_FAILED", ready.message
    return "DEPLOYMENT_CREATING", ready.message


def config_update(config: Check, secrets: Check, phase: Rollout, children: Check | None = None) -> str:
    """UPDATE_FAILED (invalid config, unresolved secret, a child the API server refused or that belongs to someone
    else, or a rollout the Deployment controller gave up on), IN_PROGRESS only while the current pod template is
    being rolled out, else NOT_UPDATING."""
    failed = children is not None and children.status == "False"
    if config.status == "False" or secrets.status == "False" or failed or phase == FAILED:
        return "UPDATE_FAILED"
    if phase == IN_PROGRESS:
        return "IN_PROGRESS"
    return "NOT_UPDATING"


def build_status(
    *,
    spec: ServingEndpointSpec | None,
    previous: Mapping[str, Any] | None,
    generation: int,
    config: Check,
    secrets: Check,
    proxy: Check,
    url: str | None,
    now: str,
    rollout: Rollout = COMPLETE,
    children: Check | None = None,
    authentication: Check | None = None,
    auth_status: Mapping[str, Any] | None = None,
) -> Status:
    """The whole ``status`` stanza (every declared field, so a merge-patch replaces stale values).

    ``rollout`` is :func:`rollout` of the Deployment the children were applied to."""
    written = children or Check("True", "ChildrenApplied", "the proxy's children are applied")
    ready = ready_check(config, secrets, proxy, written)
    checks = {READY: ready, CONFIG_VALID: config, SECRETS_RESOLVED: secrets, CHILDREN_APPLIED: written,
              PROXY_AVAILABLE: proxy,
              AUTHENTICATED: authentication or Check("Unknown", NOT_CHECKED, "the configuration is not valid")}  # fmt: skip
    status: Status = {
        "observedGeneration": generation,
        "conditions": merge_conditions((previous or {}).get("conditions"), checks, generation, now),
        "state": {
            "ready": "READY" if ready.status == "True" else "NOT_READY",
            "configUpdate": config_update(config, secrets, rollout, written),
        },
        "endpointUrl": url,
        "task": None,
        "entities": None,
        "servedEntities": None,
        "authentication": dict(auth_status) if auth_status is not None else None,
    }
    if spec is not None:
        deployment, message = _entity_state(ready, config, secrets, rollout, written)
        split = traffic(spec)
        status["task"] = spec.task
        status["entities"] = entities_summary(spec)
        status["servedEntities"] = [
            {
                "name": e.effective_name,
                "provider": e.external_model.provider,
                "model": e.external_model.name,
                "trafficPercentage": split[e.effective_name],
                "state": {"deployment": deployment, "deploymentStateMessage": message[:4096]},
            }
            for e in spec.served_entities
        ]
    return status


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def same_status(current: Mapping[str, Any] | None, desired: Status) -> bool:
    """True when writing ``desired`` would change nothing (so the reconcile skips the PATCH)."""
    return bool(_without_none(dict(current or {})) == _without_none(desired))


def transitions(previous: Mapping[str, Any] | None, desired: Status) -> list[dict[str, Any]]:
    """Conditions whose status changed (or are new), for events."""
    before = {c.get("type"): c.get("status") for c in (previous or {}).get("conditions") or ()}
    return [c for c in desired["conditions"] if before.get(c["type"]) != c["status"]]
