"""The status an endpoint should show, computed from what the reconcile found (pure; the clock is passed in).

Conditions follow the Kubernetes API conventions (``metav1.Condition``): ``Ready`` summarises
``ConfigValid``, ``SecretsResolved`` and ``ProxyAvailable``; each carries ``observedGeneration``, and its
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
PROXY_AVAILABLE = "ProxyAvailable"
CONDITION_TYPES = (READY, CONFIG_VALID, SECRETS_RESOLVED, PROXY_AVAILABLE)


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one sub-condition."""

    status: CondStatus
    reason: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class ProxyState:
    """What the Deployment reports (all zero while no controller/kubelet has acted on it)."""

    exists: bool
    generation: int = 0
    observed_generation: int = 0
    replicas: int = 1
    updated: int = 0
    available: int = 0


def proxy_state_from(deployment: Mapping[str, Any] | None) -> ProxyState:
    """ProxyState from a Deployment object (as a dict), None meaning it does not exist."""
    if deployment is None:
        return ProxyState(exists=False)
    spec = deployment.get("spec") or {}
    st = deployment.get("status") or {}
    replicas = spec.get("replicas")
    return ProxyState(
        exists=True,
        generation=int((deployment.get("metadata") or {}).get("generation") or 0),
        observed_generation=int(st.get("observedGeneration") or 0),
        replicas=int(replicas) if replicas is not None else 1,
        updated=int(st.get("updatedReplicas") or 0),
        available=int(st.get("availableReplicas") or 0),
    )


def rolling_out(state: ProxyState | None) -> bool:
    """The Deployment controller has not yet finished rolling out the current pod template."""
    if state is None or not state.exists:
        return True
    return state.observed_generation < state.generation or state.updated < state.replicas


def proxy_check(state: ProxyState | None) -> Check:
    """ProxyAvailable from the Deployment's status: True while at least one proxy replica is available.

    During a rollout the previous pods keep serving, so the endpoint stays available (and ``configUpdate`` says
    IN_PROGRESS). Without a Deployment controller and kubelet (the local control plane) no replica ever becomes
    available, so this stays False with reason Progressing.
    """
    if state is None or not state.exists:
        return Check("False", "DeploymentNotCreated", "the proxy Deployment has not been created")
    if state.replicas == 0:
        return Check("True", "ScaledToZero", "the proxy is scaled to zero replicas")
    progress = f"{state.updated}/{state.replicas} replicas updated, {state.available} available"
    if state.available < 1:
        reason = "Progressing" if rolling_out(state) else "NoAvailableReplicas"
        return Check("False", reason, f"waiting for the proxy: {progress}")
    if rolling_out(state):
        return Check("True", "RollingOut", f"rolling out a new proxy configuration: {progress}")
    return Check("True", "MinimumReplicasAvailable", f"{state.available}/{state.replicas} proxy replicas available")


def ready_check(config: Check, secrets: Check, proxy: Check) -> Check:
    for check in (config, secrets, proxy):
        if check.status != "True":
            return Check(check.status, check.reason, check.message)
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


def _entity_state(ready: Check, config: Check, secrets: Check) -> tuple[str, str]:
    if ready.status == "True":
        return "DEPLOYMENT_READY", ""
    if config.status == "False" or secrets.status == "False":
        return "DEPLOYMENT_FAILED", ready.message
    return "DEPLOYMENT_CREATING", ready.message


def config_update(config: Check, secrets: Check, proxy: Check, rolling: bool) -> str:
    if config.status == "False" or secrets.status == "False":
        return "UPDATE_FAILED"
    if rolling or proxy.status != "True":
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
    rolling: bool = False,
) -> Status:
    """The whole ``status`` stanza (every declared field, so a merge-patch replaces stale values)."""
    ready = ready_check(config, secrets, proxy)
    checks = {READY: ready, CONFIG_VALID: config, SECRETS_RESOLVED: secrets, PROXY_AVAILABLE: proxy}
    status: Status = {
        "observedGeneration": generation,
        "conditions": merge_conditions((previous or {}).get("conditions"), checks, generation, now),
        "state": {
            "ready": "READY" if ready.status == "True" else "NOT_READY",
            "configUpdate": config_update(config, secrets, proxy, rolling),
        },
        "endpointUrl": url,
        "task": None,
        "entities": None,
        "servedEntities": None,
    }
    if spec is not None:
        deployment, message = _entity_state(ready, config, secrets)
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
