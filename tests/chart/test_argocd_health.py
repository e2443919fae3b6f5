"""The Argo CD health check (charts/modelgate/argocd/health.lua) run by a real Lua 5.1 interpreter.

Argo CD evaluates health scripts with gopher-lua (Lua 5.1) and the live object as the global ``obj``;
lupa's ``lua51`` module bundles the reference Lua 5.1 interpreter.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

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


def _ready(status: str, reason: str, message: str, generation: int = 2) -> dict[str, Any]:
    return {
        "type": "Ready", "status": status, "reason": reason, "message": message,
        "observedGeneration": generation, "lastTransitionTime": "2025-01-01T00:00:00Z",
    }  # fmt: skip


def _status(*conditions: dict[str, Any], observed: int = 2, config_update: str = "NOT_UPDATING") -> dict[str, Any]:
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    return {
        "observedGeneration": observed,
        "conditions": list(conditions),
        "state": {"ready": "READY" if ready else "NOT_READY", "configUpdate": config_update},
    }


SECRET_MISSING = "secret reference {{secrets/openai/api-key}}: Secret team-a/openai not found"

CASES = [
    pytest.param(_endpoint(status=None), "Progressing", "Waiting for the modelgate operator", id="no-status"),
    pytest.param(_endpoint(status={}), "Progressing", "observe generation 2", id="empty-status"),
    pytest.param(
        _endpoint(status=_status(_ready("True", "Ready", "2 entities serving"))),
        "Healthy", "Ready: 2 entities serving", id="ready",
    ),
    pytest.param(
        _endpoint(generation=3, status=_status(_ready("True", "Ready", "ok"), observed=2)),
        "Progressing", "observe generation 3 (last observed: 2)", id="generation-not-observed",
    ),
    pytest.param(
        _endpoint(status=_status(_ready("False", "SecretNotFound", SECRET_MISSING))),
        "Degraded", "SecretNotFound: " + SECRET_MISSING, id="secret-missing",
    ),
    pytest.param(
        _endpoint(status=_status(_ready("False", "ConfigInvalid", "anthropicConfig needs an API key"))),
        "Degraded", "ConfigInvalid: anthropicConfig needs an API key", id="config-invalid",
    ),
    pytest.param(
        _endpoint(status=_status(_ready("False", "ProxyUnavailable", "0/2 proxy pods ready"), config_update="IN_PROGRESS")),
        "Progressing", "ProxyUnavailable: 0/2 proxy pods ready", id="rolling-out",
    ),
    pytest.param(
        _endpoint(status=_status(_ready("Unknown", "Reconciling", ""))),
        "Progressing", "Reconciling: Readiness unknown", id="ready-unknown",
    ),
    pytest.param(
        _endpoint(status=_status({**_ready("True", "Ready", "ok"), "type": "ConfigValid"})),
        "Progressing", "Waiting for the Ready condition", id="no-ready-condition",
    ),
    pytest.param(
        _endpoint(generation=4, status=_status(_ready("True", "Ready", "ok", generation=3), observed=4)),
        "Progressing", "Ready condition is from generation 3", id="stale-condition",
    ),
]


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
          - {type: ConfigValid, status: "True", reason: Valid, message: "", observedGeneration: 1}
          - {type: SecretsResolved, status: "True", reason: Resolved, message: "", observedGeneration: 1}
          - {type: ProxyAvailable, status: "False", reason: NoKubelet, message: x, observedGeneration: 1}
          - {type: Ready, status: "True", reason: Ready, message: "", observedGeneration: 1}
        """
    )
    assert run_health(obj) == {"status": "Healthy", "message": "Ready: Ready"}


def test_argocd_cm_snippet_ships_the_same_script() -> None:
    snippet = yaml.safe_load((REPO_ROOT / "docs" / "argocd" / "argocd-cm.yaml").read_text())
    assert snippet["kind"] == "ConfigMap"
    assert snippet["metadata"]["name"] == "argocd-cm"
    assert snippet["data"]["resource.customizations.health.serving.modelgate.io_ServingEndpoint"] == SCRIPT
