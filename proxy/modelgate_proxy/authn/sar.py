"""Query permission as Kubernetes RBAC: a SubjectAccessReview of verb ``query`` on
``servingendpoints.serving.modelgate.io`` named for the endpoint, in its namespace.

"Who can query" is then a Role/ClusterRole granting ``query`` (the ClusterRole ``modelgate-query`` ships in
``charts/modelgate/files/modelgate-query-clusterrole.yaml``) and a RoleBinding: the analogue of Databricks'
CAN_QUERY. A SubjectAccessReview takes any user name and groups, so it works the same for principals from
Kubernetes tokens, API keys and OIDC. Decisions are cached per (principal, groups, namespace, endpoint): an allow
for ``ttl`` seconds, a denial for ``negative_ttl``, so removing a RoleBinding takes effect within ``ttl``.
"""

from __future__ import annotations

from typing import Any

from ..identity import Principal
from .cache import CacheBounds, TtlCache
from .errors import IdentityUnavailable
from .kubeapi import KubeApi

PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
GROUP = "serving.modelgate.io"
RESOURCE = "servingendpoints"
VERB = "query"

_Key = tuple[str, str, tuple[str, ...], str, str]


class SubjectAccessReviewAuthorizer:
    def __init__(self, api: KubeApi, *, cache: CacheBounds | None = None, verb: str = VERB) -> None:
        self.api = api
        self.verb = verb
        self.cache: TtlCache[_Key, bool] = TtlCache(cache or CacheBounds())

    async def may_query(self, principal: Principal, namespace: str, endpoint: str) -> bool:
        if principal.kind == "anonymous":
            return False
        key: _Key = (principal.kind, principal.name, principal.groups, namespace, endpoint)

        async def review() -> tuple[bool, bool, float | None]:
            allowed = allowed_from_review(await self.api.create(PATH, self._body(principal, namespace, endpoint)))
            return allowed, allowed, None

        return await self.cache.get_or_load(key, review)

    def _body(self, principal: Principal, namespace: str, endpoint: str) -> dict[str, Any]:
        return {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
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
