"""The ValidatingAdmissionPolicy that makes Secret references follow RBAC, generated from the spec models.

A ServingEndpoint that references ``{{secrets/<name>/<key>}}`` makes the proxy send that Secret's value to the
endpoint's provider URL, which its author chooses. So whoever creates or updates an endpoint must be allowed to
``get`` every Secret it references: the policy asks the API server's authorizer, for the requesting user, about
each referenced Secret (``authorizer...check('get')``) and denies the request, naming the referenced Secrets. The operator itself (which may read them) is unaffected; objects being deleted are not checked. Nor are
writes of a namespace's workspace gateway (ServiceAccount ``modelgate-gateway`` of that namespace), which checks
the same right for its caller before it writes.

The reference fields are found in the models (those typed ``SecretReference``), so a new provider field is
covered once the policy is regenerated (``make crd`` writes it into the chart; ``--check`` finds it stale).
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from modelgate_proxy import spec
from modelgate_proxy.spec import PROVIDER_CONFIG_FIELDS

from .secrets import secret_kind

POLICY_NAME = "modelgate-modelgate-system-secret-references"
"""Its name in deploy/install.yaml (the chart names it ``<fullname>-<release namespace>-secret-references``, like its
ClusterRole, so that releases do not share one)."""
DENIED_REASON = "Forbidden"
GATEWAY_ACCOUNT = "modelgate-gateway"
"""The workspace gateway's ServiceAccount (:data:`.render_gateway.NAME`), exempt from the policy in its namespace."""


def _model_of(annotation: Any) -> type[BaseModel] | None:
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _reference_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """camelCase paths of the reference fields under ``model``."""
    for attr, info in model.model_fields.items():
        alias = info.alias or attr
        if secret_kind(info) == "reference":
            yield (*prefix, alias)
        elif (sub := _model_of(info.annotation)) is not None:
            yield from _reference_paths(sub, (*prefix, alias))


def reference_paths() -> list[tuple[str, ...]]:
    """Paths, from ``externalModel``, of every secret-reference field of every provider config."""
    out: list[tuple[str, ...]] = []
    for attr, alias in dict.fromkeys(PROVIDER_CONFIG_FIELDS.values()):
        model = _model_of(spec.ExternalModel.model_fields[attr].annotation)
        assert model is not None, attr
        out.extend(_reference_paths(model, (alias,)))
    return out


def _field_or_empty(path: tuple[str, ...]) -> str:
    """CEL: the field's value under ``m`` (an externalModel), or '' when it (or a parent) is unset."""
    checks = [f"has(m.{'.'.join(path[: i + 1])})" for i in range(len(path))]
    return f"({' && '.join(checks)} ? m.{'.'.join(path)} : '')"


def build_policy() -> dict[str, Any]:
    fields = ", ".join(_field_or_empty(p) for p in reference_paths())
    allowed = (
        "authorizer.group('').resource('secrets').namespace(object.metadata.namespace)"
        ".name(r.split('/')[1]).check('get').allowed()"
    )
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME, "labels": {"app.kubernetes.io/part-of": "modelgate"}},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [spec.GROUP],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [spec.PLURAL],
                    }
                ]
            },
            "matchConditions": [
                {"name": "not-being-deleted", "expression": "!has(object.metadata.deletionTimestamp)"},
                # the namespace's workspace gateway acts for callers whose `get` on every Secret a call adds a
                # reference to it has checked itself (SubjectAccessReview; docs/management-api.md); it may not get
                # Secrets, so the policy would refuse it every reference (docs/workspace-gateway.md)
                {"name": "not-the-workspace-gateway", "expression": "request.userInfo.username != "
                 f"'system:serviceaccount:' + object.metadata.namespace + ':{GATEWAY_ACCOUNT}'"},
            ],
            "variables": [
                # per served entity: the references it holds ({{secrets/<name>/<key>}}; the schema checked the form)
                {
                    "name": "references",
                    "expression": "object.spec.servedEntities.map(e, e.externalModel).map(m, "
                    f"[{fields}].filter(r, r != ''))",
                },
                {"name": "denied", "expression": f"variables.references.map(l, l.filter(r, !{allowed}))"},
            ],
            "validations": [
                {
                    "expression": "variables.denied.all(l, size(l) == 0)",
                    # (a message cannot call the authorizer, so it lists every referenced Secret)
                    "messageExpression": "'user ' + request.userInfo.username + ' may not get all of the Secrets "
                    "this ServingEndpoint references (' + variables.references.map(l, l.map(r, r.split('/')[1])"
                    ".join(', ')).filter(s, s != '').join(', ') + '): an endpoint may reference only Secrets its "
                    "author may get (docs/security.md)'",
                    "reason": DENIED_REASON,
                }
            ],
        },
    }
