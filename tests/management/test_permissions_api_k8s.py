"""The permissions API of serving endpoints against the real kube-apiserver: ACLs become Roles and RoleBindings
that RBAC (``kubectl auth can-i``, and the gateway's own SubjectAccessReview on queries) then enforces. The
control-plane harness runs no kube-controller-manager, so no garbage collector: deleting an endpoint is checked
through the ownerReferences of its permission objects, not by watching them go."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from modelgate_dev.devcluster import DevCluster
from tests.identity.test_kube_reviews import await_rbac
from tests.management.test_management_api_k8s import _apply, _object, _seed, _until, gateway  # noqa: F401
from tests.standins.anthropic_api import REPLY as ANTHROPIC_REPLY

# What the gateway's ServiceAccount needs on top of modelgate-gateway (docs/management-api.md): it holds every
# right it grants (so RBAC's escalation check passes without `escalate` or `bind`) and writes Roles/RoleBindings.
GATEWAY_PERMISSIONS = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: modelgate-gateway-permissions}
rules:
- apiGroups: [serving.modelgate.io]
  resources: [servingendpoints]
  verbs: [query, patch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles]
  verbs: [get, create, update, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [rolebindings]
  verbs: [get, list, create, update, delete]
"""
ENDPOINTS = "servingendpoints.serving.modelgate.io"
PERMISSIONS = "/api/2.0/permissions/serving-endpoints/"


def _call(gw: dict[str, Any], who: str, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, gw["url"] + path, json=body, timeout=20,
                            headers={"Authorization": f"Bearer {gw[who]}"})


def _can(k8s: DevCluster, namespace: str, verb: str, what: str, *who: str) -> bool:
    out = k8s.kubectl("auth", "can-i", verb, what, "-n", namespace, *who, check=False).stdout.strip()
    return out == "yes"


def _levels(answer: dict[str, Any], field: str, name: str) -> list[tuple[str, bool]]:
    return [(p["permission_level"], p["inherited"]) for e in answer["access_control_list"] if e.get(field) == name
            for p in e["all_permissions"]]


@pytest.fixture
def permissions_gateway(k8s: DevCluster, namespace: str, gateway: dict[str, Any], tmp_path: Path) -> dict[str, Any]:  # noqa: F811
    _apply(k8s, namespace, GATEWAY_PERMISSIONS, tmp_path / "gateway-permissions.yaml")
    k8s.kubectl("create", "rolebinding", "gateway-permissions", "--role=modelgate-gateway-permissions",
                f"--serviceaccount={namespace}:modelgate-proxy", "-n", namespace)
    await_rbac(k8s, namespace, "create", "rolebindings.rbac.authorization.k8s.io")
    for name in ("anthropic-completions-endpoint", "other-endpoint"):
        body = _seed("anthropic-completions")
        body["name"] = name
        body["config"]["served_entities"][0]["external_model"]["anthropic_config"]["anthropic_api_base"] = (
            gateway["anthropic"])
        created = _call(gateway, "alice", "POST", "/api/2.0/serving-endpoints", body)
        assert created.status_code == 200, created.text
    return gateway


def test_put_patch_and_replace_become_rolebindings_that_rbac_enforces(
    k8s: DevCluster, namespace: str, permissions_gateway: dict[str, Any]
) -> None:
    gw, name = permissions_gateway, "anthropic-completions-endpoint"
    endpoint = _call(gw, "alice", "GET", f"/api/2.0/serving-endpoints/{name}").json()
    eid = endpoint["id"]
    bob = ["--as=bob@example.com"]
    assert not _can(k8s, namespace, "query", f"{ENDPOINTS}/{name}", *bob)

    # PUT by the id the get answer shows: bob may query this endpoint, and only this one.
    put = _call(gw, "alice", "PUT", PERMISSIONS + eid,
                {"access_control_list": [{"user_name": "bob@example.com", "permission_level": "CAN_QUERY"}]})
    assert put.status_code == 200, put.text
    acl = put.json()
    assert acl["object_id"] == f"/serving-endpoints/{eid}"
    assert acl["object_type"] == "serving-endpoint"
    assert _levels(acl, "user_name", "bob@example.com") == [("CAN_QUERY", False)]
    assert _levels(acl, "user_name", "alice@example.com") == [("CAN_MANAGE", True)]  # RoleBinding alice
    assert _levels(acl, "group_name", "viewers") == [("CAN_VIEW", True)]
    inherited = next(e for e in acl["access_control_list"] if e.get("user_name") == "alice@example.com")
    assert f"/namespaces/{namespace}/rolebindings/alice" in inherited["all_permissions"][0]["inherited_from_object"]
    _until(lambda: _can(k8s, namespace, "query", f"{ENDPOINTS}/{name}", *bob), "bob never got query")
    assert _can(k8s, namespace, "get", f"{ENDPOINTS}/{name}", *bob)  # levels are cumulative
    assert not _can(k8s, namespace, "query", f"{ENDPOINTS}/other-endpoint", *bob)
    assert not _can(k8s, namespace, "update", f"{ENDPOINTS}/{name}", *bob)
    assert not _can(k8s, namespace, "list", ENDPOINTS, *bob)
    role = _object(k8s, namespace, "role", f"modelgate-perm-{name}-can-query")
    assert role["rules"] == [{"apiGroups": ["serving.modelgate.io"], "resources": ["servingendpoints"],
                              "verbs": ["get", "list", "watch", "query"], "resourceNames": [name]}]
    bound = _object(k8s, namespace, "rolebinding", f"modelgate-perm-{name}-can-query")
    assert bound["subjects"] == [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob@example.com"}]
    assert bound["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "modelgate"

    # The gateway's own query check (a SubjectAccessReview of verb query) now lets bob query it.
    import openai

    oai = openai.OpenAI(base_url=gw["url"] + "/serving-endpoints", api_key=gw["bob"], max_retries=0)
    _until(lambda: name in gw["app"].state.gateway.endpoints, "the watch never served the endpoint")
    completion = oai.completions.create(model=name, prompt="Hello", max_tokens=20)
    assert completion.choices[0].text == ANTHROPIC_REPLY
    with pytest.raises(openai.PermissionDeniedError):
        oai.completions.create(model="other-endpoint", prompt="Hello", max_tokens=20)

    # Without CAN_MANAGE no change: bob (CAN_QUERY) and carol (CAN_VIEW) may read, not write.
    for who in ("bob", "carol"):
        assert _call(gw, who, "GET", PERMISSIONS + name).status_code == 200
        refused = _call(gw, who, "PATCH", PERMISSIONS + name,
                        {"access_control_list": [{"user_name": f"{who}@example.com", "permission_level": "CAN_MANAGE"}]})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error_code"] == "PERMISSION_DENIED"
    assert not _can(k8s, namespace, "update", f"{ENDPOINTS}/{name}", *bob)

    # PATCH (by name) adds a group and keeps bob.
    patched = _call(gw, "alice", "PATCH", PERMISSIONS + name,
                    {"access_control_list": [{"group_name": "data-scientists", "permission_level": "CAN_VIEW"}]})
    assert patched.status_code == 200, patched.text
    assert _levels(patched.json(), "group_name", "data-scientists") == [("CAN_VIEW", False)]
    assert _levels(patched.json(), "user_name", "bob@example.com") == [("CAN_QUERY", False)]
    group = ["--as=someone", "--as-group=data-scientists"]
    _until(lambda: _can(k8s, namespace, "get", f"{ENDPOINTS}/{name}", *group), "the group never got get")
    assert not _can(k8s, namespace, "query", f"{ENDPOINTS}/{name}", *group)

    # PUT replaces: only a ServiceAccount may manage it now; bob's and the group's bindings are gone.
    replaced = _call(gw, "alice", "PUT", PERMISSIONS + eid, {"access_control_list": [
        {"service_principal_name": "ci-bot", "permission_level": "CAN_MANAGE"}]})
    assert replaced.status_code == 200, replaced.text
    direct = [e for e in replaced.json()["access_control_list"] if not e["all_permissions"][0]["inherited"]]
    assert direct == [{"service_principal_name": f"{namespace}:ci-bot",
                       "all_permissions": [{"permission_level": "CAN_MANAGE", "inherited": False}]}]
    for level in ("can-query", "can-view"):
        gone = k8s.kubectl("get", "rolebinding", f"modelgate-perm-{name}-{level}", "-n", namespace, check=False)
        assert gone.returncode != 0
        assert "NotFound" in gone.stderr
    sa = [f"--as=system:serviceaccount:{namespace}:ci-bot"]
    _until(lambda: not _can(k8s, namespace, "query", f"{ENDPOINTS}/{name}", *bob), "bob kept query")
    assert _can(k8s, namespace, "update", f"{ENDPOINTS}/{name}", *sa)
    assert _can(k8s, namespace, "get", f"rolebindings/modelgate-perm-{name}-can-manage", *sa)
    assert not _can(k8s, namespace, "delete", f"{ENDPOINTS}/other-endpoint", *sa)

    # Deleting the endpoint: its permission objects are owned by it (no garbage collector in this harness).
    uid = _object(k8s, namespace, "servingendpoint", name)["metadata"]["uid"]
    for kind in ("role", "rolebinding"):
        owners = _object(k8s, namespace, kind, f"modelgate-perm-{name}-can-manage")["metadata"]["ownerReferences"]
        assert owners == [{"apiVersion": "serving.modelgate.io/v1alpha1", "kind": "ServingEndpoint", "name": name,
                           "uid": uid, "controller": False, "blockOwnerDeletion": False}]
    assert _call(gw, "alice", "DELETE", f"/api/2.0/serving-endpoints/{name}").status_code == 200
    missing = _call(gw, "alice", "GET", PERMISSIONS + name)
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert _call(gw, "alice", "GET", PERMISSIONS + eid).json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize(("entry", "field"), [
    ({"user_name": "bob@example.com", "permission_level": "CAN_RUN"}, "permission_level"),
    ({"user_name": "bob@example.com"}, "permission_level"),
    ({"user_name": "bob@example.com", "group_name": "g", "permission_level": "CAN_VIEW"}, "exactly one of"),
    ({"user_name": "", "permission_level": "CAN_VIEW"}, "user_name"),
    ({"service_principal_name": "a:b:c", "permission_level": "CAN_VIEW"}, "service_principal_name"),
    ({"user_name": "bob@example.com", "permission_level": "CAN_VIEW", "color": "red"}, "color"),
])
def test_bad_acls_are_invalid_parameter_values_naming_the_field(
    k8s: DevCluster, namespace: str, permissions_gateway: dict[str, Any], entry: dict[str, Any], field: str
) -> None:
    resp = _call(permissions_gateway, "alice", "PUT", PERMISSIONS + "other-endpoint", {"access_control_list": [entry]})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "access_control_list[0]" in resp.json()["message"]
    assert field in resp.json()["message"]
    listed = k8s.kubectl("get", "rolebindings", "-n", namespace, "-l", "app.kubernetes.io/managed-by=modelgate",
                         "-o", "json").stdout
    assert json.loads(listed)["items"] == []  # nothing was written


def test_the_acl_bound_the_levels_and_the_databricks_sdk(
    k8s: DevCluster, namespace: str, permissions_gateway: dict[str, Any]
) -> None:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.serving import ServingEndpointAccessControlRequest, ServingEndpointPermissionLevel

    gw, name = permissions_gateway, "other-endpoint"
    at_bound = [{"user_name": f"u{i}@example.com", "permission_level": "CAN_VIEW"} for i in range(100)]
    ok = _call(gw, "alice", "PUT", PERMISSIONS + name, {"access_control_list": at_bound})
    assert ok.status_code == 200, ok.text
    assert len(_object(k8s, namespace, "rolebinding", f"modelgate-perm-{name}-can-view")["subjects"]) == 100
    over = _call(gw, "alice", "PATCH", PERMISSIONS + name,
                 {"access_control_list": [{"user_name": "one-more", "permission_level": "CAN_VIEW"}]})
    assert over.status_code == 400
    assert "at most 100" in over.json()["message"]
    too_many = _call(gw, "alice", "PUT", PERMISSIONS + name, {"access_control_list": [*at_bound, at_bound[0]]})
    assert too_many.status_code == 400
    assert too_many.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    w = WorkspaceClient(host=gw["url"], token=gw["alice"])
    levels = w.serving_endpoints.get_permission_levels(name).permission_levels or []
    assert [lv.permission_level for lv in levels] == [ServingEndpointPermissionLevel.CAN_MANAGE,
                                                     ServingEndpointPermissionLevel.CAN_QUERY,
                                                     ServingEndpointPermissionLevel.CAN_VIEW]
    eid = w.serving_endpoints.get(name).id
    assert eid is not None
    got = w.serving_endpoints.set_permissions(eid, access_control_list=[ServingEndpointAccessControlRequest(
        user_name="bob@example.com", permission_level=ServingEndpointPermissionLevel.CAN_QUERY)])
    assert got.object_id == f"/serving-endpoints/{eid}"
    w.serving_endpoints.update_permissions(eid, access_control_list=[ServingEndpointAccessControlRequest(
        group_name="data-scientists", permission_level=ServingEndpointPermissionLevel.CAN_MANAGE)])
    read = w.serving_endpoints.get_permissions(eid)
    direct = {(e.user_name or e.group_name, p.permission_level) for e in read.access_control_list or []
              for p in e.all_permissions or [] if not p.inherited}
    assert direct == {("bob@example.com", ServingEndpointPermissionLevel.CAN_QUERY),
                      ("data-scientists", ServingEndpointPermissionLevel.CAN_MANAGE)}
    gone = k8s.kubectl("get", "rolebinding", f"modelgate-perm-{name}-can-view", "-n", namespace, check=False)
    assert gone.returncode != 0  # the 100 viewers were replaced
    _until(lambda: _can(k8s, namespace, "update", f"{ENDPOINTS}/{name}", "--as=x", "--as-group=data-scientists"),
           "the group never got update")


def test_without_its_rbac_rights_the_gateway_answers_unavailable_and_grants_nothing(
    k8s: DevCluster, namespace: str, gateway: dict[str, Any], tmp_path: Path  # noqa: F811
) -> None:
    """modelgate-gateway alone (no roles/rolebindings rights): a 503 naming what the API server refused."""
    created = _call(gateway, "alice", "POST", "/api/2.0/serving-endpoints", _seed("anthropic-completions"))
    assert created.status_code == 200, created.text
    name = "anthropic-completions-endpoint"
    put = _call(gateway, "alice", "PUT", PERMISSIONS + name,
                {"access_control_list": [{"user_name": "bob@example.com", "permission_level": "CAN_QUERY"}]})
    assert put.status_code == 503, put.text
    assert put.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert "RoleBinding list" in put.json()["message"]  # it reads the endpoint's bindings first
    assert not _can(k8s, namespace, "query", f"{ENDPOINTS}/{name}", "--as=bob@example.com")
    read = _call(gateway, "alice", "GET", PERMISSIONS + name)
    assert read.status_code == 503
    assert "RoleBinding list" in read.json()["message"]

    # With the Role and RoleBinding rights but not query/patch on the endpoints, RBAC's escalation check refuses.
    rbac_only = GATEWAY_PERMISSIONS.replace("  verbs: [query, patch]\n", "  verbs: [get]\n")
    _apply(k8s, namespace, rbac_only, tmp_path / "rbac-only.yaml")
    k8s.kubectl("create", "rolebinding", "gateway-permissions", "--role=modelgate-gateway-permissions",
                f"--serviceaccount={namespace}:modelgate-proxy", "-n", namespace)
    await_rbac(k8s, namespace, "create", "roles.rbac.authorization.k8s.io")
    escalating = _call(gateway, "alice", "PUT", PERMISSIONS + name,
                       {"access_control_list": [{"user_name": "bob@example.com", "permission_level": "CAN_QUERY"}]})
    assert escalating.status_code == 503, escalating.text
    assert "Role create" in escalating.json()["message"]
    assert "escalat" in escalating.json()["message"] or "not currently held" in escalating.json()["message"]
    assert not _can(k8s, namespace, "query", f"{ENDPOINTS}/{name}", "--as=bob@example.com")
