"""The pure ACL <-> RBAC mapping of the permissions API (the API server side is test_permissions_api_k8s.py)."""

from __future__ import annotations

from typing import Any

import pytest

from modelgate_proxy.errors import BadRequest
from modelgate_proxy.server.management.permissions import (
    MAX_ACL,
    answer,
    binding,
    direct_acl,
    merged_acl,
    parse_acl,
    rules,
)

OWNER = {"metadata": {"name": "chat", "namespace": "team-a", "uid": "u-1"}}


@pytest.mark.parametrize(("given", "subject"), [
    ("ci-bot", ("ServiceAccount", "ci-bot", "team-a")),
    ("other:ci-bot", ("ServiceAccount", "ci-bot", "other")),
    ("system:serviceaccount:other:ci-bot", ("ServiceAccount", "ci-bot", "other")),
])
def test_service_principals_are_service_accounts(given: str, subject: tuple[str, str, str]) -> None:
    acl = parse_acl({"access_control_list": [{"service_principal_name": given, "permission_level": "CAN_QUERY"}]},
                    "team-a")
    assert acl == {subject: "CAN_QUERY"}
    obj = binding(OWNER, "CAN_QUERY", list(acl))
    assert obj["subjects"] == [{"kind": "ServiceAccount", "name": "ci-bot", "namespace": subject[2]}]
    assert direct_acl([obj]) == acl  # read back from the stored binding
    entry = answer("u1", direct_acl([obj]), {})["access_control_list"][0]
    assert entry["service_principal_name"] == f"{subject[2]}:ci-bot"


def test_levels_are_cumulative_and_named_for_the_endpoint() -> None:
    view, query, manage = (rules("chat", lv) for lv in ("CAN_VIEW", "CAN_QUERY", "CAN_MANAGE"))
    assert view[0]["verbs"] == ["get", "list", "watch"]
    assert query[0]["verbs"] == ["get", "list", "watch", "query"]
    assert manage[0]["verbs"] == ["get", "list", "watch", "query", "update", "patch", "delete"]
    assert all(r["resourceNames"] for r in [*view, *query, *manage])
    assert manage[1]["resourceNames"] == ["modelgate-perm-chat-can-view", "modelgate-perm-chat-can-query",
                                          "modelgate-perm-chat-can-manage"]


def test_patch_sets_a_principals_level_and_keeps_the_others_up_to_the_bound() -> None:
    current = {("User", "a", ""): "CAN_VIEW", ("Group", "g", ""): "CAN_QUERY"}
    assert merged_acl(current, {("User", "a", ""): "CAN_MANAGE"}) == {("User", "a", ""): "CAN_MANAGE",
                                                                      ("Group", "g", ""): "CAN_QUERY"}
    full = {("User", f"u{i}", ""): "CAN_VIEW" for i in range(MAX_ACL)}
    assert len(merged_acl(full, {("User", "u0", ""): "CAN_QUERY"})) == MAX_ACL
    with pytest.raises(BadRequest, match="at most 100"):
        merged_acl(full, {("User", "one-more", ""): "CAN_VIEW"})


@pytest.mark.parametrize("body", [
    [], {"access_control_list": {}}, {"acl": []}, {"access_control_list": ["bob"]},
    {"access_control_list": [{"user_name": "b", "permission_level": "CAN_VIEW"},
                             {"user_name": "b", "permission_level": "CAN_QUERY"}]},
    {"access_control_list": [{"user_name": "x" * 513, "permission_level": "CAN_VIEW"}]},
    {"access_control_list": [{"service_principal_name": "Not_A_Name", "permission_level": "CAN_VIEW"}]},
])
def test_bad_bodies_are_refused(body: Any) -> None:
    with pytest.raises(BadRequest):
        parse_acl(body, "team-a")


def test_an_absent_list_is_empty() -> None:
    assert parse_acl({}, "team-a") == {}
