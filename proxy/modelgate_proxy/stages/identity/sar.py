"""Query permission as Kubernetes RBAC: a SubjectAccessReview of verb ``query`` on
``servingendpoints.serving.modelgate.io`` named for the endpoint, in its namespace.

"Who can query" is then a Role/ClusterRole granting ``query`` (the ClusterRole ``modelgate-query`` ships in
``charts/modelgate/files/modelgate-query-clusterrole.yaml``) and a RoleBinding: the analogue of Databricks'
CAN_QUERY. A SubjectAccessReview takes any user name and groups, so it works the same for principals from
Kubernetes tokens, API keys and OIDC. Decisions are cached per (principal, groups, namespace, endpoint): an allow
for ``ttl`` seconds, a denial for ``negative_ttl``, so removing a RoleBinding takes effect within ``ttl``.
"""

from __future__ import annotations

import re
from typing import Any

from ...errors import IdentityUnavailable
from ...exchange import Principal
from .check_cache import CacheBounds, TtlCache
from .kubeapi import KubeApi

PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
GROUP = "serving.modelgate.io"
RESOURCE = "servingendpoints"
VERB = "query"

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_Key = tuple[str, str, tuple[str, ...], str, str]


class SubjectAccessReviewAuthorizer:
    def __init__(
        self, api: KubeApi, *, cache: CacheBounds | None = None, verb: str = VERB, local: bool = False
    ) -> None:
        """``local=True`` asks a LocalSubjectAccessReview in the endpoint's namespace instead (same answer for a
        namespaced resource; needs only a namespaced Role with ``create`` on ``localsubjectaccessreviews``)."""
        self.api = api
        self.verb = verb
        self.local = local
        self.cache: TtlCache[_Key, bool] = TtlCache(cache or CacheBounds())

    async def may_query(self, principal: Principal, namespace: str, endpoint: str) -> bool:
        if principal.kind == "anonymous" or not _DNS_LABEL.fullmatch(namespace) or not endpoint or "/" in endpoint:
            return False
        key: _Key = (principal.kind, principal.name, principal.groups, namespace, endpoint)

        async def review() -> tuple[bool, bool, float | None]:
            path = f"/apis/authorization.k8s.io/v1/namespaces/{namespace}/localsubjectaccessreviews" if self.local else PATH
            allowed = allowed_from_review(await self.api.create(path, self._body(principal, namespace, endpoint)))
            return allowed, allowed, None

        return await self.cache.get_or_load(key, review)

    def _body(self, principal: Principal, namespace: str, endpoint: str) -> dict[str, Any]:
        return {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "LocalSubjectAccessReview" if self.local else "SubjectAccessReview",
            **({"metadata": {"namespace": namespace}} if self.local else {}),
            "spec": {
                "user": principal.name,
                "groups": list(principal.groups),
                "resourceAttributes": {
                    "namespace": namespace, "verb": self.verb, "group": GROUP, "resource": RESOURCE, "name": endpoint,
                },
            },
        }


def allowed_from_review(review: dict[str, Any]) -> bool:
    status = review.get("status")
    if not isinstance(status, dict):
        raise IdentityUnavailable("the Kubernetes API server's SubjectAccessReview answer has no status")
    return status.get("allowed") is True and status.get("denied") is not True
