"""Databricks serving-endpoint permissions as Kubernetes RBAC (pure; no HTTP here; docs/management-api.md).

Per endpoint and level the gateway keeps one Role and one RoleBinding, both named :func:`object_name`
(``modelgate-perm-<endpoint>-can-query``), owned by the ServingEndpoint (an ``ownerReference``: the garbage
collector deletes them with it) and labelled as modelgate's (:data:`MANAGED_LABELS`, :data:`OWNER_UID_LABEL`).
The Role's rules name the endpoint in ``resourceNames``; the levels are cumulative, as in Databricks:

- ``CAN_VIEW``: ``get``, ``list``, ``watch`` on the endpoint (``list``/``watch`` only with the field selector
  ``metadata.name=<endpoint>``: RBAC cannot scope a plain list to names, so the namespace-wide list of the
  management API still needs a namespace-wide ``list``);
- ``CAN_QUERY``: those and ``query`` (the verb the proxy's SubjectAccessReview asks);
- ``CAN_MANAGE``: those and ``update``, ``patch``, ``delete``, plus ``get`` on the endpoint's own permission
  Roles and RoleBindings.

ACL principals map to RBAC subjects: ``user_name`` -> ``User``, ``group_name`` -> ``Group``,
``service_principal_name`` -> ``ServiceAccount`` (``name`` in the endpoint's namespace, ``namespace:name`` or
``system:serviceaccount:namespace:name``; read back as ``namespace:name``). Machine principals that are not
ServiceAccounts (API keys, OIDC clients) are ``user_name``s, as their principal name is a user name to RBAC.
"""

from __future__ import annotations

import re
from typing import Any

from ...errors import BadRequest
from ...spec import API_VERSION, KIND

LEVELS: dict[str, str] = {
    "CAN_VIEW": "Can view the endpoint and its permissions",
    "CAN_QUERY": "Can view and query the endpoint",
    "CAN_MANAGE": "Can view, query, update and delete the endpoint and change its permissions",
}
ORDER = ("CAN_VIEW", "CAN_QUERY", "CAN_MANAGE")
"""The levels, lowest first; each includes the ones before it."""
MAX_ACL = 100
"""The most direct ACL entries one endpoint keeps (a PUT or a PATCH that would make more is refused)."""
MAX_PRINCIPAL = 512
"""The longest user, group or service principal name."""
RBAC_GROUP = "rbac.authorization.k8s.io"
MANAGED_LABELS = {"app.kubernetes.io/managed-by": "modelgate", "app.kubernetes.io/part-of": "modelgate"}
OWNER_UID_LABEL = "serving.modelgate.io/permissions-of-uid"
LEVEL_LABEL = "serving.modelgate.io/permission-level"
ENDPOINT_ANNOTATION = "serving.modelgate.io/permissions-of"
PRINCIPAL_FIELDS = ("user_name", "group_name", "service_principal_name")
_ENTRY_FIELDS = {*PRINCIPAL_FIELDS, "permission_level"}
_SA_PREFIX = "system:serviceaccount:"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

Subject = tuple[str, str, str]
"""An RBAC subject as (kind, name, namespace): ``("User", "alice", "")``, ``("ServiceAccount", "bot", "ns")``."""
Acl = dict[Subject, str]
"""The direct permissions of an endpoint: subject -> level."""


def object_name(endpoint: str, level: str) -> str:
    """The Role and RoleBinding of ``level`` on ``endpoint``: ``modelgate-perm-<endpoint>-can-query``."""
    return f"modelgate-perm-{endpoint}-{level.lower().replace('_', '-')}"


def rules(endpoint: str, level: str) -> list[dict[str, Any]]:
    verbs = ["get", "list", "watch"]
    if ORDER.index(level) >= ORDER.index("CAN_QUERY"):
        verbs.append("query")
    out: list[dict[str, Any]] = []
    if level == "CAN_MANAGE":
        verbs += ["update", "patch", "delete"]
        names = [object_name(endpoint, lv) for lv in ORDER]
        out.append({"apiGroups": [RBAC_GROUP], "resources": ["roles", "rolebindings"], "verbs": ["get"],
                    "resourceNames": names})
    return [{"apiGroups": [API_VERSION.split("/")[0]], "resources": ["servingendpoints"], "verbs": verbs,
             "resourceNames": [endpoint]}, *out]


def _principal(entry: dict[str, Any], where: str, namespace: str) -> Subject:
    given = [f for f in PRINCIPAL_FIELDS if entry.get(f) is not None]
    if len(given) != 1:
        raise BadRequest(f"{where}: set exactly one of user_name, group_name and service_principal_name",
                         param="access_control_list")
    field = given[0]
    value = entry[field]
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_PRINCIPAL:
        raise BadRequest(f"{where}.{field}: must be a non-empty string of at most {MAX_PRINCIPAL} characters",
                         param=field)
    if field == "user_name":
        return ("User", value, "")
    if field == "group_name":
        return ("Group", value, "")
    parts = value.removeprefix(_SA_PREFIX).split(":")
    sa_namespace, name = (namespace, parts[0]) if len(parts) == 1 else (parts[0], parts[-1])
    if len(parts) > 2 or not _DNS_LABEL.fullmatch(sa_namespace) or not _DNS_SUBDOMAIN.fullmatch(name):
        raise BadRequest(f"{where}.service_principal_name: {value[:100]!r} is not a Kubernetes ServiceAccount "
                         "(name, namespace:name or system:serviceaccount:namespace:name); give other machine "
                         "principals as user_name", param="service_principal_name")
    return ("ServiceAccount", name, sa_namespace)


def parse_acl(body: Any, namespace: str) -> Acl:
    """A ``{"access_control_list": [...]}`` request body -> :data:`Acl`; :class:`BadRequest` naming the field."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object {access_control_list: [...]}")
    unknown = sorted(set(body) - {"access_control_list", "serving_endpoint_id"})
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown field (expected access_control_list)", param=unknown[0])
    entries = body.get("access_control_list")
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise BadRequest("access_control_list: must be a list", param="access_control_list")
    if len(entries) > MAX_ACL:
        raise BadRequest(f"access_control_list: at most {MAX_ACL} entries per endpoint", param="access_control_list")
    acl: Acl = {}
    for i, entry in enumerate(entries):
        where = f"access_control_list[{i}]"
        if not isinstance(entry, dict):
            raise BadRequest(f"{where}: must be an object {{user_name|group_name|service_principal_name, "
                             "permission_level}", param="access_control_list")
        extra = sorted(set(entry) - _ENTRY_FIELDS)
        if extra:
            raise BadRequest(f"{where}.{extra[0]}: unknown field", param=extra[0])
        subject = _principal(entry, where, namespace)
        level = entry.get("permission_level")
        if level not in LEVELS:
            raise BadRequest(f"{where}.permission_level: {str(level)[:40]!r} is not one of "
                             f"{', '.join(sorted(LEVELS))}", param="permission_level")
        if subject in acl:
            raise BadRequest(f"{where}: the principal is given twice; give each principal one level",
                             param="access_control_list")
        acl[subject] = str(level)
    return acl


def merged_acl(current: Acl, changes: Acl) -> Acl:
    """A PATCH: each principal it names gets the level it gives; the others keep theirs."""
    out = {**current, **changes}
    if len(out) > MAX_ACL:
        raise BadRequest(f"access_control_list: the endpoint would have {len(out)} entries; at most {MAX_ACL}",
                         param="access_control_list")
    return out


def _owned_metadata(owner: dict[str, Any], level: str) -> dict[str, Any]:
    meta = owner["metadata"]
    reference = {"apiVersion": API_VERSION, "kind": KIND, "name": meta["name"], "uid": meta["uid"],
                 "controller": False, "blockOwnerDeletion": False}
    labels = {**MANAGED_LABELS, OWNER_UID_LABEL: meta["uid"], LEVEL_LABEL: level.lower().replace("_", "-")}
    return {"name": object_name(meta["name"], level), "namespace": meta["namespace"], "labels": labels,
            "annotations": {ENDPOINT_ANNOTATION: meta["name"]}, "ownerReferences": [reference]}


def role(owner: dict[str, Any], level: str) -> dict[str, Any]:
    return {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "Role", "metadata": _owned_metadata(owner, level),
            "rules": rules(owner["metadata"]["name"], level)}


def rbac_subject(subject: Subject) -> dict[str, str]:
    kind, name, namespace = subject
    if kind == "ServiceAccount":
        return {"kind": kind, "name": name, "namespace": namespace}
    return {"kind": kind, "apiGroup": RBAC_GROUP, "name": name}


def binding(owner: dict[str, Any], level: str, subjects: list[Subject]) -> dict[str, Any]:
    return {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "RoleBinding", "metadata": _owned_metadata(owner, level),
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": object_name(owner["metadata"]["name"], level)},
            "subjects": [rbac_subject(s) for s in sorted(subjects)]}


def subject_of(value: Any) -> Subject | None:
    """An RBAC subject of a stored binding -> :data:`Subject` (None: not a subject shape we know)."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    kind = value.get("kind")
    if kind == "ServiceAccount":
        return ("ServiceAccount", value["name"], str(value.get("namespace") or ""))
    if kind in ("User", "Group"):
        return (str(kind), value["name"], "")
    return None


def level_of(obj: dict[str, Any]) -> str | None:
    label = ((obj.get("metadata") or {}).get("labels") or {}).get(LEVEL_LABEL)
    return next((lv for lv in ORDER if lv.lower().replace("_", "-") == label), None)


def direct_acl(bindings: list[dict[str, Any]]) -> Acl:
    """The direct permissions the managed RoleBindings hold (a subject in two of them: its highest level)."""
    acl: Acl = {}
    for obj in bindings:
        level = level_of(obj)
        for raw in obj.get("subjects") or [] if level else []:
            subject = subject_of(raw)
            if subject is not None and level is not None and (
                    subject not in acl or ORDER.index(level) > ORDER.index(acl[subject])):
                acl[subject] = level
    return acl


def principal_fields(subject: Subject) -> dict[str, str]:
    kind, name, namespace = subject
    if kind == "ServiceAccount":
        return {"service_principal_name": f"{namespace}:{name}"}
    return {"user_name" if kind == "User" else "group_name": name}


def answer(endpoint_id: str, direct: Acl, inherited: dict[Subject, tuple[str, list[str]]]) -> dict[str, Any]:
    """Databricks' ``ServingEndpointPermissions``: every principal with its direct level (``inherited``
    false) and the level other RBAC gives it (``inherited`` true; ``inherited_from_object``: the namespace's
    other RoleBindings that name it)."""
    entries = []
    for subject in sorted(set(direct) | set(inherited)):
        permissions: list[dict[str, Any]] = []
        if subject in direct:
            permissions.append({"permission_level": direct[subject], "inherited": False})
        if subject in inherited:
            level, sources = inherited[subject]
            permissions.append({"permission_level": level, "inherited": True, "inherited_from_object": sources})
        entries.append({**principal_fields(subject), "all_permissions": permissions})
    return {"object_id": f"/serving-endpoints/{endpoint_id}", "object_type": "serving-endpoint",
            "access_control_list": entries}


def levels_answer() -> dict[str, Any]:
    return {"permission_levels": [{"permission_level": lv, "description": LEVELS[lv]} for lv in reversed(ORDER)]}
