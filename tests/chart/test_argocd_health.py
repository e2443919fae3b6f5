"""The Argo CD health check (charts/modelgate/argocd/health.lua) run by a real Lua 5.1 interpreter, on the statuses
the operator's own reconciler writes in realistic situations (so the pair is tested together).

Argo CD evaluates health scripts with gopher-lua (Lua 5.1) and the live object as the global ``obj``;
lupa's ``lua51`` module bundles the reference Lua 5.1 interpreter.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from typing import Any, cast

import pytest
import yaml

from modelgate_operator import conditions
from modelgate_operator.kube import Kube, KubeError
from modelgate_operator.reconcile import Reconciler
from modelgate_operator.render import ProxyDefaults
from modelgate_operator.render_auth import AuthDefaults
from modelgate_operator.secretcache import digests

from .helmtool import CHART, REPO_ROOT

try:
    from lupa import lua51 as lupa_lua51
except ImportError:  # a hard failure, not a skip: the acceptance needs a real interpreter
    lupa_lua51 = None

SCRIPT = (CHART / "argocd" / "health.lua").read_text()


def run_health(obj: dict[str, Any]) -> dict[str, str]:
    if lupa_lua51 is None:
        pytest.fail("lupa is not installed: `pip install -e .[dev]` (the dev extra has lupa, Lua 5.1)", pytrace=False)
    lua = lupa_lua51.LuaRuntime(unpack_returned_tuples=True)
    assert lua.eval("_VERSION") == "Lua 5.1"
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT)
    return {k: result[k] for k in ("status", "message") if result[k] is not None}


# ------------------------------------------------------------------------------------------------------------------
# Samples from the operator itself: its reconciler (the code that runs in the cluster) against an API that serves
# the given Secrets and a Deployment whose status is what the Deployment controller writes in each situation.

NAMESPACE, NAME = "team-a", "chat"
OPENAI = {"name": "gpt-4o", "provider": "openai", "task": "llm/v1/chat",
          "openaiConfig": {"openaiApiKey": "{{secrets/openai/api-key}}"}}  # fmt: skip
SPEC: dict[str, Any] = {"servedEntities": [{"name": "gpt", "externalModel": OPENAI}], "proxy": {"replicas": 2}}
SCALED_TO_ZERO: dict[str, Any] = {**SPEC, "proxy": {"replicas": 0}}
INVALID_CONFIG: dict[str, Any] = {"servedEntities": [{"name": "e", "externalModel": {
    "name": "claude", "provider": "anthropic", "task": "llm/v1/embeddings",
    "anthropicConfig": {"anthropicApiKey": "{{secrets/openai/api-key}}"}}}]}  # fmt: skip
INVALID_SPEC: dict[str, Any] = {"servedEntities": [{"name": "e", "externalModel": {
    "name": "gpt-4o", "provider": "openai", "task": "llm/v1/chat"}}]}  # fmt: skip
KEY = {"openai": {"api-key": "sk-test"}}
DEPLOYMENT_GENERATION = 4


def controller_status(
    *, replicas: int = 2, updated: int = 2, available: int = 2, total: int | None = None,
    progressing: tuple[str, str] | None = ("True", "NewReplicaSetAvailable"), observed: int = DEPLOYMENT_GENERATION,
) -> dict[str, Any]:
    """A Deployment status as kube-controller-manager's Deployment controller writes it."""
    messages = {
        "NewReplicaSetAvailable": 'ReplicaSet "modelgate-chat-7d9f" has successfully progressed.',
        "ReplicaSetUpdated": 'ReplicaSet "modelgate-chat-7d9f" is progressing.',
        "ProgressDeadlineExceeded": 'ReplicaSet "modelgate-chat-7d9f" has timed out progressing.',
    }
    total = updated if total is None else total
    st: dict[str, Any] = {
        "observedGeneration": observed, "replicas": total, "updatedReplicas": updated,
        "readyReplicas": available, "availableReplicas": available, "unavailableReplicas": max(0, total - available),
        "conditions": [{"type": "Available", "status": "True" if available >= replicas - replicas // 4 else "False",
                        "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                        "lastUpdateTime": "2025-01-01T00:00:00Z", "lastTransitionTime": "2025-01-01T00:00:00Z"}],
    }  # fmt: skip
    if progressing is not None:
        st["conditions"].append({
            "type": "Progressing", "status": progressing[0], "reason": progressing[1],
            "message": messages[progressing[1]],
            "lastUpdateTime": "2025-01-01T00:00:00Z", "lastTransitionTime": "2025-01-01T00:00:00Z",
        })  # fmt: skip
    return st


class ApiAsTheReconcilerSeesIt:
    """Stands in for :class:`modelgate_operator.kube.Kube`: Secrets as given, every apply answered with the applied
    object (the Deployment with the given status); records the status the reconciler writes."""

    def __init__(
        self, secrets: dict[str, dict[str, str]], deployment_status: dict[str, Any] | None,
        rejected: KubeError | None = None, foreign: str | None = None,
    ) -> None:  # fmt: skip
        self.secrets = secrets
        self.deployment_status = deployment_status
        self.live_deployment: dict[str, Any] | None = None
        self.written: dict[str, Any] | None = None
        self.rejected = rejected
        self.foreign = foreign  # a kind of which a user's object (not the endpoint's) has the child's name

    async def get_child(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        if kind == self.foreign:
            return {"metadata": {"name": name, "namespace": namespace, "uid": "a-users-object"}}
        if kind == "Deployment" and self.live_deployment is not None:
            return {"metadata": self.live_deployment["metadata"]}
        return None

    async def apply(self, manifest: dict[str, Any], uid: str | None = None) -> dict[str, Any]:
        if self.rejected is not None and manifest["kind"] == "Deployment":
            raise self.rejected
        obj = copy.deepcopy(dict(manifest))
        if obj["kind"] == "Deployment":
            obj["metadata"]["generation"] = DEPLOYMENT_GENERATION
            if self.deployment_status is not None:
                obj["status"] = copy.deepcopy(self.deployment_status)
            self.live_deployment = obj
        return obj

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        data = self.secrets.get(name)
        return None if data is None else digests({k: base64.b64encode(v.encode()).decode() for k, v in data.items()})

    async def proxy_state(self, namespace: str, name: str) -> conditions.ProxyState:
        return conditions.proxy_state_from(self.live_deployment)

    async def patch_status(self, namespace: str, name: str, new: dict[str, Any]) -> None:
        self.written = dict(new)

    async def post_event(self, *args: Any, **kwargs: Any) -> None:
        return None


def reconciled(
    spec: dict[str, Any], *, secrets: dict[str, dict[str, str]] | None = None,
    deployment: dict[str, Any] | None = None, generation: int = 2, edited_since: int = 0,
    rejected: KubeError | None = None, foreign: str | None = None,
) -> dict[str, Any]:
    """The endpoint after the operator's reconcile of ``generation`` (then ``edited_since`` more spec edits that the
    operator has not seen yet)."""
    api = ApiAsTheReconcilerSeesIt(KEY if secrets is None else secrets, deployment, rejected, foreign)
    body: dict[str, Any] = {
        "apiVersion": "serving.modelgate.io/v1alpha1", "kind": "ServingEndpoint",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": "0b9e", "generation": generation}, "spec": spec,
    }  # fmt: skip
    reconciler = Reconciler(cast(Kube, api), ProxyDefaults(auth=AuthDefaults(reviews_binding=None)))  # no cluster
    asyncio.run(reconciler.reconcile(body))
    assert api.written is not None
    body["status"] = json.loads(json.dumps(api.written))  # as the API server stores it (None values dropped)
    body["status"] = {k: v for k, v in body["status"].items() if v is not None}
    body["metadata"]["generation"] = generation + edited_since
    return body


def _ready(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


OPERATOR_CASES = [
    pytest.param(reconciled(SPEC, deployment=controller_status()),
                 "Healthy", "EndpointReady: the endpoint is serving", id="ready"),
    pytest.param(reconciled(SCALED_TO_ZERO, deployment=controller_status(replicas=0, updated=0, available=0)),
                 "Suspended", "ScaledToZero: the proxy is scaled to zero replicas", id="scaled-to-zero"),
    # the API server refused the Deployment (memory request above its limit): the 422 is in the status
    pytest.param(reconciled(SPEC, deployment=controller_status(), rejected=KubeError(
                 "apply", "Deployment", NAMESPACE, "modelgate-chat", 422,
                 "Deployment.apps \"modelgate-chat\" is invalid: spec.template.spec.containers[0].resources.requests: "
                 "Invalid value: \"2Gi\": must be less than or equal to memory limit of 1Gi", "Invalid")),
                 "Degraded", "Invalid: the API server rejected Deployment modelgate-chat: 422 Invalid", id="apply-422"),
    pytest.param(reconciled(SPEC, deployment=controller_status(), foreign="ConfigMap"),
                 "Degraded", "ChildConflict: ConfigMap modelgate-chat already exists", id="child-conflict"),
    pytest.param(reconciled(SPEC, deployment=None),  # just applied: no controller has looked at it yet
                 "Progressing", "Progressing: waiting for the proxy: 0/2 replicas updated, 0 available",
                 id="first-rollout"),
    pytest.param(reconciled(SPEC, deployment=controller_status(updated=1, available=0, progressing=(
                 "True", "ReplicaSetUpdated"))),
                 "Progressing", "Progressing: waiting for the proxy: 1/2 replicas updated", id="pods-starting"),
    pytest.param(reconciled(SPEC, deployment=controller_status(updated=1, available=2, total=3, progressing=(
                 "True", "ReplicaSetUpdated"))),
                 "Healthy", "EndpointReady", id="rolling-out-while-old-pods-serve"),
    pytest.param(reconciled(SPEC, secrets={}, deployment=controller_status()),
                 "Degraded", "SecretNotFound: ", id="secret-missing"),
    pytest.param(reconciled(SPEC, secrets={"openai": {"other": "x"}}, deployment=controller_status()),
                 "Degraded", "SecretKeyNotFound: ", id="secret-key-missing"),
    pytest.param(reconciled(INVALID_CONFIG, deployment=controller_status()),
                 "Degraded", "InvalidConfig: ", id="config-invalid"),
    pytest.param(reconciled(INVALID_SPEC, deployment=controller_status()),
                 "Degraded", "InvalidSpec: ", id="spec-invalid"),
    # the rollout had finished, then every proxy pod failed (crash loop): Degraded at once
    pytest.param(reconciled(SPEC, deployment=controller_status(available=0)),
                 "Degraded", "NoAvailableReplicas: no proxy replica is available: 2/2 replicas updated, 0 available",
                 id="no-replicas-available"),
    # a new template whose pods never become available (unpullable image, crash loop): the controller gives up
    pytest.param(reconciled(SPEC, deployment=controller_status(updated=2, available=0, progressing=(
                 "False", "ProgressDeadlineExceeded"))),
                 "Degraded", "ProgressDeadlineExceeded: the proxy rollout made no progress", id="rollout-failed"),
    pytest.param(reconciled(SPEC, deployment=controller_status(updated=1, available=2, total=3, progressing=(
                 "False", "ProgressDeadlineExceeded"))),
                 "Degraded", "(the previous pods keep serving)", id="rollout-failed-old-pods-serve"),
    pytest.param(reconciled(SPEC, deployment=controller_status(), generation=2, edited_since=1),
                 "Progressing", "observe generation 3 (last observed: 2)", id="stale-observed-generation"),
]
"""What the operator writes in each situation, and what Argo CD must make of it."""


def test_samples_cover_what_the_operator_reports() -> None:
    ready_reasons = {_ready(p.values[0])["reason"] for p in OPERATOR_CASES}  # type: ignore[index]
    assert {"EndpointReady", "Progressing", "SecretNotFound", "SecretKeyNotFound", "InvalidConfig", "InvalidSpec",
            "NoAvailableReplicas", "ProgressDeadlineExceeded", "ScaledToZero", "Invalid", "ChildConflict",
            } <= ready_reasons  # fmt: skip
    updates = {p.values[0]["status"]["state"]["configUpdate"] for p in OPERATOR_CASES}  # type: ignore[index]
    assert updates == {"NOT_UPDATING", "IN_PROGRESS", "UPDATE_FAILED"}


# ------------------------------------------------------------------------------------------------------------------
# Shapes the operator does not write, which the script must still survive (no status, partial status).


def _endpoint(generation: int = 2, status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "serving.modelgate.io/v1alpha1",
        "kind": "ServingEndpoint",
        "metadata": {"name": "chat", "namespace": "team-a", "generation": generation},
        "spec": {"servedEntities": [{"name": "gpt", "externalModel": {"name": "gpt-4o", "provider": "openai"}}]},
    }
    if status is not None:
        obj["status"] = status
    return obj


def _condition(ctype: str, status: str, reason: str, message: str, generation: int = 2) -> dict[str, Any]:
    return {
        "type": ctype, "status": status, "reason": reason, "message": message,
        "observedGeneration": generation, "lastTransitionTime": "2025-01-01T00:00:00Z",
    }  # fmt: skip


def _status(*conditions: dict[str, Any], observed: int = 2, config_update: str = "NOT_UPDATING") -> dict[str, Any]:
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    return {
        "observedGeneration": observed,
        "conditions": list(conditions),
        "state": {"ready": "READY" if ready else "NOT_READY", "configUpdate": config_update},
    }


SHAPE_CASES = [
    pytest.param(_endpoint(status=None), "Progressing", "Waiting for the modelgate operator", id="no-status"),
    pytest.param(_endpoint(status={}), "Progressing", "observe generation 2", id="empty-status"),
    pytest.param(
        _endpoint(status=_status(_condition("Ready", "Unknown", "", ""))),
        "Progressing", "Readiness unknown", id="ready-unknown",
    ),
    pytest.param(
        _endpoint(status=_status(_condition("ConfigValid", "True", "ConfigValid", "ok"))),
        "Progressing", "Waiting for the Ready condition", id="no-ready-condition",
    ),
    pytest.param(
        _endpoint(generation=4, status=_status(_condition("Ready", "True", "EndpointReady", "ok", generation=3),
                                               observed=4)),
        "Progressing", "Ready condition is from generation 3", id="stale-condition",
    ),
]
CASES = OPERATOR_CASES + SHAPE_CASES


@pytest.mark.parametrize(("obj", "status", "message"), CASES)
def test_health(obj: dict[str, Any], status: str, message: str) -> None:
    before = copy.deepcopy(obj)
    hs = run_health(obj)
    assert hs["status"] == status
    assert message in hs["message"]
    assert obj == before


def test_cluster_shaped_object_from_yaml() -> None:
    """An object as `kubectl get -o yaml` prints it (extra fields, conditions in any order)."""
    obj = yaml.safe_load(
        """
        apiVersion: serving.modelgate.io/v1alpha1
        kind: ServingEndpoint
        metadata: {name: chat, namespace: a, generation: 1, uid: 1b2c, resourceVersion: "42",
                   finalizers: [serving.modelgate.io/finalizer]}
        spec: {}
        status:
          observedGeneration: 1
          endpointUrl: http://modelgate-chat.a.svc.cluster.local/serving-endpoints/chat/invocations
          conditions:
          - {type: ConfigValid, status: "True", reason: ConfigValid, message: "", observedGeneration: 1}
          - {type: SecretsResolved, status: "True", reason: SecretsResolved, message: "", observedGeneration: 1}
          - {type: ProxyAvailable, status: "True", reason: MinimumReplicasAvailable, message: x, observedGeneration: 1}
          - {type: Ready, status: "True", reason: EndpointReady, message: "", observedGeneration: 1}
          state: {ready: READY, configUpdate: NOT_UPDATING}
        """
    )
    assert run_health(obj) == {"status": "Healthy", "message": "EndpointReady: Ready"}


def test_argocd_cm_snippet_ships_the_same_script() -> None:
    snippet = yaml.safe_load((REPO_ROOT / "docs" / "argocd" / "argocd-cm.yaml").read_text())
    assert snippet["kind"] == "ConfigMap"
    assert snippet["metadata"]["name"] == "argocd-cm"
    assert snippet["data"]["resource.customizations.health.serving.modelgate.io_ServingEndpoint"] == SCRIPT
